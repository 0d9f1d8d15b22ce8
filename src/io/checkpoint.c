#include "checkpoint.h"

#include "gemm.h"

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
    o->valid = LOOM_VALID_AUTO;
    o->eval_every = 500, o->checkpoint_every = 500, o->sample_every = 0;
    o->eval_limit = 1000;
    o->valid_split = LOOM_SPLIT_SHUFFLE;
}

void loom_train_opts_free(loom_train_opts *o) {
    for (size_t i = 0; o->class_names && i < o->nclass_names; i++) free(o->class_names[i]);
    free(o->class_names);
    o->class_names = NULL, o->nclass_names = 0;
}

loom_status loom_train_opts_set_classes(loom_train_opts *dst, char *const *names, size_t n,
                                        loom_error *err) {
    char **v = n ? calloc(n, sizeof *v) : NULL;
    if (n && !v) return loom_fail(err, LOOM_ENOMEM, "class names: out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(v[i] = strdup(names[i] ? names[i] : ""))) {
            for (size_t k = 0; k < i; k++) free(v[k]);
            free(v);
            return loom_fail(err, LOOM_ENOMEM, "class names: out of memory");
        }
    loom_train_opts_free(dst);
    dst->class_names = v, dst->nclass_names = n;
    return LOOM_OK;
}

static void model_json(cJSON *m, const loom_config *cfg) {
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
    if (cfg->multiscale) cJSON_AddNumberToObject(m, "multiscale", (double)cfg->multiscale);
    if (cfg->patch && !cfg->frames_out) cJSON_AddNumberToObject(m, "patch", (double)cfg->patch); /* renet */
    if (cfg->mbstd) cJSON_AddNumberToObject(m, "mbstd", (double)cfg->mbstd); /* gran_d; absent: off */
    if (cfg->batchnorm) cJSON_AddBoolToObject(m, "batchnorm", 1);            /* gran; absent: off */
    if (cfg->steps_draw && strcmp(cfg->model, "gran") == 0) { /* gran: steps only */
        cJSON_AddNumberToObject(m, "steps_draw", (double)cfg->steps_draw);
    } else if (cfg->steps_draw) { /* draw */
        cJSON_AddNumberToObject(m, "steps_draw", (double)cfg->steps_draw);
        cJSON_AddNumberToObject(m, "read_n", (double)cfg->read_n);
        cJSON_AddNumberToObject(m, "write_n", (double)cfg->write_n);
        cJSON_AddBoolToObject(m, "attention", cfg->attention);
    }
    if (strcmp(cfg->model, "rae") == 0) cJSON_AddBoolToObject(m, "variational", cfg->variational);
    if (cfg->frames_out) { /* convlstm */
        cJSON_AddNumberToObject(m, "frames_in", (double)cfg->frames_in);
        cJSON_AddNumberToObject(m, "frames_out", (double)cfg->frames_out);
        cJSON_AddNumberToObject(m, "kernel", (double)cfg->kernel);
        cJSON_AddNumberToObject(m, "patch", (double)cfg->patch);
        /* only when not the default, so older runs read as before */
        if (cfg->peephole) cJSON_AddBoolToObject(m, "peephole", 1);
        if (cfg->feedback) cJSON_AddBoolToObject(m, "feedback", 1);
        if (cfg->frame_loss) cJSON_AddStringToObject(m, "loss", loom_frame_loss_name(cfg->frame_loss));
        if (cfg->softmax256) cJSON_AddStringToObject(m, "output", "softmax256");
    }
}

/* the configs of n models (cfgs[i] with roles[i]) and the training options */
static char *run_json(const loom_config *const *cfgs, const char *const *roles, size_t n,
                      const loom_train_opts *o) {
    cJSON *root = cJSON_CreateObject();
    if (n == 1) {
        model_json(cJSON_AddObjectToObject(root, "model"), cfgs[0]);
    } else {
        cJSON *ms = cJSON_AddObjectToObject(root, "models");
        for (size_t i = 0; i < n; i++) model_json(cJSON_AddObjectToObject(ms, roles[i]), cfgs[i]);
    }
    if (o) {
        cJSON *t = cJSON_AddObjectToObject(root, "train");
        cJSON_AddStringToObject(t, "data", o->data);
        if (o->gray) cJSON_AddBoolToObject(t, "gray", 1);
        cJSON_AddNumberToObject(t, "batch", (double)o->batch);
        cJSON_AddNumberToObject(t, "lr", o->lr);
        cJSON_AddNumberToObject(t, "beta1", o->beta1);
        cJSON_AddNumberToObject(t, "beta2", o->beta2);
        cJSON_AddNumberToObject(t, "eps", o->eps);
        cJSON_AddNumberToObject(t, "clip", o->clip);
        cJSON_AddNumberToObject(t, "lr_halflife", (double)o->lr_halflife);
        cJSON_AddNumberToObject(t, "steps", (double)o->steps);
        char seed[32];
        /* a number written as its exact decimal token (through a double it would
         * round beyond 2^53); read back exactly by raw_numbers() */
        snprintf(seed, sizeof seed, "%" PRIu64, o->seed);
        cJSON_AddRawToObject(t, "seed", seed);
        if (o->valid == LOOM_VALID_AUTO) cJSON_AddStringToObject(t, "valid", "auto"); /* not resolved yet */
        else cJSON_AddNumberToObject(t, "valid", (double)o->valid);
        cJSON_AddNumberToObject(t, "eval_every", (double)o->eval_every);
        cJSON_AddNumberToObject(t, "eval_limit", (double)o->eval_limit);
        cJSON_AddNumberToObject(t, "checkpoint_every", (double)o->checkpoint_every);
        cJSON_AddNumberToObject(t, "sample_every", (double)o->sample_every);
        cJSON_AddStringToObject(t, "valid_split", o->valid_split == LOOM_SPLIT_TAIL ? "tail" : "shuffle");
        if (o->ema > 0) cJSON_AddNumberToObject(t, "ema", o->ema); /* absent: off (older runs) */
        if (o->resize_h) { /* absent: the images' own size */
            cJSON *r = cJSON_AddArrayToObject(t, "resize");
            cJSON_AddItemToArray(r, cJSON_CreateNumber((double)o->resize_h));
            cJSON_AddItemToArray(r, cJSON_CreateNumber((double)o->resize_w));
        }
        if (o->precision != LOOM_PREC_FP32)
            cJSON_AddStringToObject(t, "precision", loom_precision_name((loom_precision)o->precision));
        bool own_lr = false; /* absent: every model on lr */
        for (size_t i = 0; i < n; i++) own_lr |= o->model_lr[i] > 0;
        if (own_lr) {
            cJSON *r = cJSON_AddArrayToObject(t, "model_lr");
            for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(r, cJSON_CreateNumber(o->model_lr[i]));
        }
        if (o->d_steps > 0) cJSON_AddNumberToObject(t, "d_steps", (double)o->d_steps);
        if (o->adversarial > 0) {
            cJSON_AddNumberToObject(t, "adversarial", o->adversarial);
            cJSON_AddStringToObject(t, "adversarial_on", loom_adv_on_name(o->adversarial_on));
        }
        if (o->class_names) {
            cJSON *names = cJSON_AddArrayToObject(t, "class_names");
            for (size_t i = 0; i < o->nclass_names; i++)
                cJSON_AddItemToArray(names, cJSON_CreateString(o->class_names[i]));
        }
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

char *loom_config_json(const loom_config *cfg, const loom_train_opts *o) {
    const char *role = "model";
    return run_json(&cfg, &role, 1, o);
}

char *loom_run_config_json(const loom_run_model *models, size_t n, const loom_train_opts *o) {
    const loom_config *cfgs[LOOM_MAX_MODELS];
    const char *roles[LOOM_MAX_MODELS];
    if (n == 0 || n > LOOM_MAX_MODELS) return NULL;
    for (size_t i = 0; i < n; i++) cfgs[i] = &models[i].m->cfg, roles[i] = models[i].role;
    return run_json(cfgs, roles, n, o);
}

/* read an integer field in [lo, hi] */
const char *loom_adv_on_name(unsigned on) {
    return on == LOOM_ADV_RECON ? "recon" : on == LOOM_ADV_SAMPLES ? "samples" :
           on == (LOOM_ADV_RECON | LOOM_ADV_SAMPLES) ? "both" : "?";
}

unsigned loom_adv_on_parse(const char *name) {
    for (unsigned on = 1; on <= 3; on++)
        if (strcmp(name, loom_adv_on_name(on)) == 0) return on;
    return 0;
}

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

/* cJSON keeps numbers as doubles only. Each number node gets the text of its
 * token as valuestring (freed by cJSON_Delete), so that integers such as the
 * seed are read exactly: the k-th number token of the text is the k-th number
 * node in document order. */
static void raw_numbers(cJSON *root, const char *json) {
    cJSON *stack[64];
    size_t depth = 0;
    const char *p = json;
    cJSON *node = root;
    /* walk the tree in document order with an explicit stack */
    while (node) {
        if (cJSON_IsNumber(node)) {
            /* next number token of the text, outside strings */
            while (*p) {
                if (*p == '"') {
                    for (p++; *p && *p != '"'; p++)
                        if (*p == '\\' && p[1]) p++;
                    if (*p) p++;
                } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
                    break;
                } else {
                    p++;
                }
            }
            size_t n = strspn(p, "0123456789+-.eE");
            if (n && n < 64 && !node->valuestring && (node->valuestring = malloc(n + 1)))
                memcpy(node->valuestring, p, n), node->valuestring[n] = 0;
            p += n;
        }
        if (node->child && depth < sizeof stack / sizeof stack[0]) {
            stack[depth++] = node;
            node = node->child;
            continue;
        }
        while (node && !node->next) node = depth ? stack[--depth] : NULL;
        if (node) node = node->next;
        if (node == root) break;
    }
}

/* the keys of each model's section: the common ones, and the model's own */
static const char *const *model_keys(const char *model) {
    /* channels: only the models that take colour (rowlstm, diagbilstm) */
    static const char *const plain[] = {"name", "height", "width", "channels", "layers", "hidden",
                                        "classes", "multiscale", NULL};
    static const char *const grupixel[] = {"name", "height", "width", "layers", "hidden", "classes",
                                           "cell", "zdim", NULL};
    static const char *const draw[] = {"name", "height", "width", "layers", "hidden", "classes", "zdim",
                                       "steps_draw", "read_n", "write_n", "attention", NULL};
    static const char *const rae[] = {"name", "height", "width", "layers", "hidden", "classes", "zdim",
                                      "variational", NULL};
    static const char *const renet[] = {"name", "height", "width", "channels", "layers", "hidden",
                                        "classes", "cell", "patch", NULL};
    static const char *const gran[] = {"name", "height", "width", "layers", "hidden", "classes", "zdim",
                                       "steps_draw", "batchnorm", NULL};
    static const char *const gran_d[] = {"name", "height", "width", "layers", "hidden", "classes", "mbstd", NULL};
    if (strcmp(model, "gran") == 0) return gran;
    if (strcmp(model, "gran_d") == 0) return gran_d;
    if (strcmp(model, "renet") == 0 || strcmp(model, "reseg") == 0 || strcmp(model, "renet_d") == 0) return renet;
    if (strcmp(model, "grupixel") == 0) return grupixel;
    if (strcmp(model, "draw") == 0) return draw;
    static const char *const convlstm[] = {"name", "height", "width", "channels", "layers", "hidden",
                                           "classes", "frames_in", "frames_out", "kernel", "patch",
                                           "peephole", "output", "feedback", "loss", NULL};
    if (strcmp(model, "rae") == 0) return rae;
    if (strcmp(model, "convlstm") == 0) return convlstm;
    return plain; /* rowlstm, diagbilstm */
}

/* one model's section into cfg, strictly: keys of another model are errors */
static loom_status parse_model(loom_config *cfg, const cJSON *m, const char *what, loom_error *err) {
    loom_status st;
    double v = 0.0;
    memset(cfg, 0, sizeof *cfg);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    if (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof cfg->model)
        return loom_fail(err, LOOM_EFORMAT, "%s: config key \"name\" must be a model name", what);
    strcpy(cfg->model, name->valuestring);
    if (!loom_model_find(cfg->model))
        return loom_fail(err, LOOM_EFORMAT, "%s: unknown model '%s' (known: %s)", what, cfg->model,
                         loom_model_names());
    const char *const *keys = model_keys(cfg->model);
    for (const cJSON *it = m->child; it; it = it->next) {
        bool ok = false;
        for (const char *const *k = keys; *k; k++) ok |= it->string && strcmp(it->string, *k) == 0;
        if (ok) continue;
        for (const char *const *k = model_keys("draw"); *k; k++) ok |= it->string && strcmp(it->string, *k) == 0;
        for (const char *const *k = model_keys("grupixel"); *k; k++) ok |= it->string && strcmp(it->string, *k) == 0;
        for (const char *const *k = model_keys("rae"); *k; k++) ok |= it->string && strcmp(it->string, *k) == 0;
        for (const char *const *k = model_keys("convlstm"); *k; k++) ok |= it->string && strcmp(it->string, *k) == 0;
        for (const char *const *k = model_keys("renet"); *k; k++) ok |= it->string && strcmp(it->string, *k) == 0;
        if (ok)
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"%s\" is not a setting of model %s", what,
                             it->string, cfg->model);
        return loom_fail(err, LOOM_EFORMAT, "%s: unknown config key \"%s\"", what,
                         it->string ? it->string : "?");
    }
    if ((st = get_int(m, "height", 1, 4096, &v, what, err))) return st;
    cfg->height = (size_t)v;
    if ((st = get_int(m, "width", 1, 4096, &v, what, err))) return st;
    cfg->width = (size_t)v;
    if (cJSON_GetObjectItemCaseSensitive(m, "channels")) { /* absent: 1 (gray) */
        if ((st = get_int(m, "channels", 1, 3, &v, what, err))) return st;
        cfg->channels = (size_t)v;
    }
    if ((st = get_int(m, "layers", 1, 64, &v, what, err))) return st;
    cfg->layers = (size_t)v;
    if ((st = get_int(m, "hidden", 1, 4096, &v, what, err))) return st;
    cfg->hidden = (size_t)v;
    if ((st = get_int(m, "classes", 0, 100000, &v, what, err))) return st;
    cfg->nclasses = (int)v;
    const cJSON *cell = cJSON_GetObjectItemCaseSensitive(m, "cell");
    if (cell) { /* optional: the model's check says whether it needs one */
        if (!cJSON_IsString(cell) || strlen(cell->valuestring) >= sizeof cfg->cell)
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"cell\" must be a cell name", what);
        strcpy(cfg->cell, cell->valuestring);
    }
    if (cJSON_GetObjectItemCaseSensitive(m, "zdim")) {
        if ((st = get_int(m, "zdim", 1, 4096, &v, what, err))) return st;
        cfg->zdim = (size_t)v;
    }
    if (cJSON_GetObjectItemCaseSensitive(m, "multiscale")) { /* rowlstm, diagbilstm; absent: 0 */
        if ((st = get_int(m, "multiscale", 1, 4096, &v, what, err))) return st;
        cfg->multiscale = (size_t)v;
    }
    if (cJSON_GetObjectItemCaseSensitive(m, "patch")) { /* renet (convlstm: below) */
        if ((st = get_int(m, "patch", 1, 16, &v, what, err))) return st;
        cfg->patch = (size_t)v;
    }
    const cJSON *bn = cJSON_GetObjectItemCaseSensitive(m, "batchnorm"); /* gran; absent: off */
    if (bn && !cJSON_IsBool(bn))
        return loom_fail(err, LOOM_EFORMAT, "%s: config key \"batchnorm\" must be true or false", what);
    cfg->batchnorm = cJSON_IsTrue(bn);
    if (cJSON_GetObjectItemCaseSensitive(m, "mbstd")) { /* gran_d; absent: 0 */
        if ((st = get_int(m, "mbstd", 1, 64, &v, what, err))) return st;
        cfg->mbstd = (size_t)v;
    }
    if (cJSON_GetObjectItemCaseSensitive(m, "steps_draw") && strcmp(cfg->model, "gran") == 0) {
        if ((st = get_int(m, "steps_draw", 1, 1024, &v, what, err))) return st;
        cfg->steps_draw = (size_t)v;
    } else if (cJSON_GetObjectItemCaseSensitive(m, "steps_draw")) { /* draw: all four or none */
        if ((st = get_int(m, "steps_draw", 1, 1024, &v, what, err))) return st;
        cfg->steps_draw = (size_t)v;
        if ((st = get_int(m, "read_n", 1, 4096, &v, what, err))) return st;
        cfg->read_n = (size_t)v;
        if ((st = get_int(m, "write_n", 1, 4096, &v, what, err))) return st;
        cfg->write_n = (size_t)v;
        const cJSON *att = cJSON_GetObjectItemCaseSensitive(m, "attention");
        if (!cJSON_IsBool(att))
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"attention\" must be true or false", what);
        cfg->attention = cJSON_IsTrue(att);
    }
    const cJSON *var = cJSON_GetObjectItemCaseSensitive(m, "variational");
    if (var) { /* rae */
        if (!cJSON_IsBool(var))
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"variational\" must be true or false", what);
        cfg->variational = cJSON_IsTrue(var);
    }
    if (cJSON_GetObjectItemCaseSensitive(m, "frames_out")) { /* convlstm: all four or none */
        if ((st = get_int(m, "frames_in", 1, 100, &v, what, err))) return st;
        cfg->frames_in = (size_t)v;
        if ((st = get_int(m, "frames_out", 1, 100, &v, what, err))) return st;
        cfg->frames_out = (size_t)v;
        if ((st = get_int(m, "kernel", 1, 15, &v, what, err))) return st;
        cfg->kernel = (size_t)v;
        if ((st = get_int(m, "patch", 1, 16, &v, what, err))) return st;
        cfg->patch = (size_t)v;
        const cJSON *pe = cJSON_GetObjectItemCaseSensitive(m, "peephole"); /* absent: off */
        if (pe && !cJSON_IsBool(pe))
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"peephole\" must be true or false", what);
        cfg->peephole = cJSON_IsTrue(pe);
        const cJSON *fb = cJSON_GetObjectItemCaseSensitive(m, "feedback"); /* absent: off */
        if (fb && !cJSON_IsBool(fb))
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"feedback\" must be true or false", what);
        cfg->feedback = cJSON_IsTrue(fb);
        const cJSON *lo = cJSON_GetObjectItemCaseSensitive(m, "loss"); /* absent: the cross-entropy */
        if (lo && (!cJSON_IsString(lo) || (cfg->frame_loss = loom_frame_loss_parse(lo->valuestring)) < 0))
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"loss\" must be \"xent\", \"l1\" or \"mse\"", what);
        const cJSON *ou = cJSON_GetObjectItemCaseSensitive(m, "output"); /* absent: bernoulli */
        if (ou && (!cJSON_IsString(ou) || (strcmp(ou->valuestring, "softmax256") != 0 &&
                                           strcmp(ou->valuestring, "bernoulli") != 0)))
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"output\" must be \"bernoulli\" or \"softmax256\"",
                             what);
        cfg->softmax256 = ou && strcmp(ou->valuestring, "softmax256") == 0;
    }
    loom_error e2;
    if (loom_config_check(cfg, &e2)) return loom_fail(err, LOOM_EFORMAT, "%s: %s", what, e2.msg);
    return LOOM_OK;
}

static loom_status parse_train(loom_train_opts *o, const cJSON *t, const char *what, loom_error *err) {
    static const char *const train_keys[] = {
        "data", "batch", "lr", "beta1", "beta2", "eps", "clip", "lr_halflife", "steps", "seed",
        "valid", "eval_every", "eval_limit", "checkpoint_every", "sample_every", "valid_split",
        "class_names", "gray", "ema", "resize", "precision", "model_lr", "d_steps", "adversarial", "adversarial_on", NULL};
    loom_status st;
    double v = 0.0;
    if (!cJSON_IsObject(t)) return loom_fail(err, LOOM_EFORMAT, "%s: config has no \"train\" object", what);
    if ((st = only_keys(t, train_keys, what, err))) return st;
    loom_train_opts_default(o);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
    if (!cJSON_IsString(data) || strlen(data->valuestring) >= sizeof o->data)
        return loom_fail(err, LOOM_EFORMAT, "%s: config key \"data\" must be a string", what);
    strcpy(o->data, data->valuestring);
    const cJSON *prec = cJSON_GetObjectItemCaseSensitive(t, "precision");
    if (prec) { /* absent: fp32 (every run before bf16) */
        loom_precision p;
        if (!cJSON_IsString(prec) || loom_precision_parse(prec->valuestring, &p))
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"precision\" must be \"fp32\" or \"bf16\"", what);
        o->precision = (int)p;
    }
    const cJSON *gray = cJSON_GetObjectItemCaseSensitive(t, "gray");
    if (gray) { /* absent: false */
        if (!cJSON_IsBool(gray))
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"gray\" must be true or false", what);
        o->gray = cJSON_IsTrue(gray);
    }
    /* an integer number, read from its token exactly; checkpoints written
     * before seeds were numbers hold a decimal string */
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(t, "seed");
    const char *digits = seed && seed->valuestring ? seed->valuestring : "";
    char *endp = NULL;
    errno = 0;
    if (!(cJSON_IsNumber(seed) || cJSON_IsString(seed)) || !*digits || strspn(digits, "0123456789") != strlen(digits) ||
        strlen(digits) > 20 || (o->seed = strtoull(digits, &endp, 10), *endp) || errno == ERANGE)
        return loom_fail(err, LOOM_EFORMAT, "%s: config key \"seed\" must be an integer in [0, 2^64)", what);
    if ((st = get_int(t, "batch", 1, 1 << 20, &v, what, err))) return st;
    o->batch = (size_t)v;
    if ((st = get_num(t, "lr", 0, 1e3, &o->lr, what, err))) return st;
    if ((st = get_num(t, "beta1", 0, 1, &o->beta1, what, err))) return st;
    if ((st = get_num(t, "beta2", 0, 1, &o->beta2, what, err))) return st;
    if ((st = get_num(t, "eps", 0, 1, &o->eps, what, err))) return st;
    if ((st = get_num(t, "clip", 0, 1e12, &o->clip, what, err))) return st;
    if ((st = get_int(t, "lr_halflife", 0, 1e15, &v, what, err))) return st;
    o->lr_halflife = (long)v;
    if ((st = get_int(t, "steps", 0, 1e15, &v, what, err))) return st;
    o->steps = (long)v;
    const cJSON *valid = cJSON_GetObjectItemCaseSensitive(t, "valid");
    if (cJSON_IsString(valid) && strcmp(valid->valuestring, "auto") == 0) {
        o->valid = LOOM_VALID_AUTO;
    } else {
        if ((st = get_int(t, "valid", 0, 1e12, &v, what, err))) return st;
        o->valid = (size_t)v;
    }
    if ((st = get_int(t, "eval_every", 0, 1e15, &v, what, err))) return st;
    o->eval_every = (long)v;
    if ((st = get_int(t, "eval_limit", 0, 1e12, &v, what, err))) return st;
    o->eval_limit = (size_t)v;
    if ((st = get_int(t, "checkpoint_every", 0, 1e15, &v, what, err))) return st;
    o->checkpoint_every = (long)v;
    if ((st = get_int(t, "sample_every", 0, 1e15, &v, what, err))) return st;
    o->sample_every = (long)v;
    /* runs written before the shuffled split have no key: their split is the tail */
    const cJSON *split = cJSON_GetObjectItemCaseSensitive(t, "valid_split");
    o->valid_split = LOOM_SPLIT_TAIL;
    if (split) {
        if (cJSON_IsString(split) && strcmp(split->valuestring, "shuffle") == 0) o->valid_split = LOOM_SPLIT_SHUFFLE;
        else if (!cJSON_IsString(split) || strcmp(split->valuestring, "tail") != 0)
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"valid_split\" must be \"shuffle\" or \"tail\"", what);
    }
    if (cJSON_GetObjectItemCaseSensitive(t, "ema")) {
        if ((st = get_num(t, "ema", 0, 0.999999999, &o->ema, what, err))) return st;
    }
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(t, "resize");
    if (rs) {
        const cJSON *a = cJSON_IsArray(rs) && cJSON_GetArraySize(rs) == 2 ? rs->child : NULL, *b = a ? a->next : NULL;
        if (!a || !cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble < 1 || b->valuedouble < 1 ||
            a->valuedouble > 4096 || b->valuedouble > 4096 || a->valuedouble != (double)(size_t)a->valuedouble ||
            b->valuedouble != (double)(size_t)b->valuedouble)
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"resize\" must be [height, width], each 1..4096", what);
        o->resize_h = (size_t)a->valuedouble, o->resize_w = (size_t)b->valuedouble;
    }
    const cJSON *mlr = cJSON_GetObjectItemCaseSensitive(t, "model_lr");
    if (mlr) {
        int k = cJSON_IsArray(mlr) ? cJSON_GetArraySize(mlr) : 0;
        bool ok = k >= 1 && k <= LOOM_MAX_MODELS;
        size_t i = 0;
        for (const cJSON *it = ok ? mlr->child : NULL; it; it = it->next, i++) {
            ok &= cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble <= 10;
            if (ok) o->model_lr[i] = it->valuedouble;
        }
        if (!ok)
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"model_lr\" must be an array of 1 to %d "
                             "learning rates in [0, 10]", what, LOOM_MAX_MODELS);
    }
    if (cJSON_GetObjectItemCaseSensitive(t, "d_steps")) {
        if ((st = get_int(t, "d_steps", 1, 1000, &v, what, err))) return st;
        o->d_steps = (long)v;
    }
    if (cJSON_GetObjectItemCaseSensitive(t, "adversarial") &&
        (st = get_num(t, "adversarial", 1e-9, 1e6, &o->adversarial, what, err)))
        return st;
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(t, "adversarial_on");
    o->adversarial_on = o->adversarial > 0 ? LOOM_ADV_RECON : 0; /* what runs meant before the key */
    if (on && (!cJSON_IsString(on) || !(o->adversarial_on = loom_adv_on_parse(on->valuestring)) || !(o->adversarial > 0)))
        return loom_fail(err, LOOM_EFORMAT, "%s: config key \"adversarial_on\" must be \"recon\", \"samples\" or "
                         "\"both\", beside \"adversarial\"", what);
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(t, "class_names");
    if (names) {
        size_t n = cJSON_IsArray(names) ? (size_t)cJSON_GetArraySize(names) : 0;
        bool ok = cJSON_IsArray(names) && n > 0 && n <= 100000;
        for (const cJSON *it = ok ? names->child : NULL; it; it = it->next)
            ok &= cJSON_IsString(it) && it->valuestring[0] && strlen(it->valuestring) < 256;
        if (!ok)
            return loom_fail(err, LOOM_EFORMAT, "%s: config key \"class_names\" must be an array of "
                             "1 to 100000 non-empty strings", what);
        o->class_names = calloc(n, sizeof *o->class_names);
        if (!o->class_names) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", what);
        o->nclass_names = n;
        size_t i = 0;
        for (const cJSON *it = names->child; it; it = it->next, i++)
            if (!(o->class_names[i] = strdup(it->valuestring))) {
                loom_train_opts_free(o);
                return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", what);
            }
    }
    return LOOM_OK;
}

static bool role_ok(const char *r) {
    size_t n = strlen(r);
    return n > 0 && n < LOOM_ROLELEN && strspn(r, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

loom_status loom_run_config_parse(loom_config *cfgs, char (*roles)[LOOM_ROLELEN], size_t *n,
                                  loom_train_opts *o, const char *json, const char *what,
                                  loom_error *err) {
    cJSON *root = cJSON_Parse(json);
    loom_status st = LOOM_OK;
    *n = 0;
    if (root) raw_numbers(root, json);
    static const char *const top_keys[] = {"model", "models", "train", NULL};
    if (!cJSON_IsObject(root)) {
        st = loom_fail(err, LOOM_EFORMAT, "%s: config is not a JSON object", what);
        goto done;
    }
    if ((st = only_keys(root, top_keys, what, err))) goto done;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "models");
    if (m && ms) {
        st = loom_fail(err, LOOM_EFORMAT, "%s: config has both \"model\" and \"models\"", what);
        goto done;
    }
    if (ms) { /* several models, by role */
        size_t k = 0;
        if (!cJSON_IsObject(ms) || !ms->child) {
            st = loom_fail(err, LOOM_EFORMAT, "%s: config key \"models\" must be an object of models by role", what);
            goto done;
        }
        for (const cJSON *it = ms->child; it; it = it->next, k++) {
            if (k == LOOM_MAX_MODELS) {
                st = loom_fail(err, LOOM_EFORMAT, "%s: more than %d models", what, LOOM_MAX_MODELS);
                goto done;
            }
            if (!it->string || !role_ok(it->string) || !cJSON_IsObject(it)) {
                st = loom_fail(err, LOOM_EFORMAT, "%s: model role \"%s\" must be 1-15 of [a-z0-9_] "
                               "naming an object", what, it->string ? it->string : "?");
                goto done;
            }
            for (size_t j = 0; j < k; j++)
                if (strcmp(roles[j], it->string) == 0) {
                    st = loom_fail(err, LOOM_EFORMAT, "%s: model role \"%s\" appears twice", what, it->string);
                    goto done;
                }
            snprintf(roles[k], LOOM_ROLELEN, "%s", it->string);
            if ((st = parse_model(&cfgs[k], it, what, err))) goto done;
        }
        *n = k;
    } else {
        if (!cJSON_IsObject(m)) {
            st = loom_fail(err, LOOM_EFORMAT, "%s: config has no \"model\" object", what);
            goto done;
        }
        snprintf(roles[0], LOOM_ROLELEN, "model");
        if ((st = parse_model(&cfgs[0], m, what, err))) goto done;
        *n = 1;
    }
    if (o) st = parse_train(o, cJSON_GetObjectItemCaseSensitive(root, "train"), what, err);
done:
    if (st) *n = 0;
    cJSON_Delete(root);
    return st;
}

loom_status loom_config_parse(loom_config *cfg, loom_train_opts *o, const char *json,
                              const char *what, loom_error *err) {
    loom_config cfgs[LOOM_MAX_MODELS];
    char roles[LOOM_MAX_MODELS][LOOM_ROLELEN];
    size_t n;
    loom_status st = loom_run_config_parse(cfgs, roles, &n, o, json, what, err);
    if (st) return st;
    if (n != 1) {
        if (o) loom_train_opts_free(o);
        return loom_fail(err, LOOM_EFORMAT, "%s: a run of %zu models, not one model", what, n);
    }
    *cfg = cfgs[0];
    return LOOM_OK;
}

/* ------------------------------------------------------------ checkpoints */

#define TNAME (LOOM_ROLELEN + LOOM_NAMELEN + 16)

/* "<optim.m.|optim.v.|><role.>name": the role only with several models */
static void tensor_name(char *out, size_t cap, const char *kind, size_t nmodels, const char *role,
                        const char *name) {
    snprintf(out, cap, "%s%s%s%s", kind, nmodels > 1 ? role : "", nmodels > 1 ? "." : "", name);
}

loom_status loom_run_save(const char *path, const loom_run_model *models, size_t n,
                          const loom_train_state *st, const loom_train_opts *o, loom_error *err) {
    if (n == 0 || n > LOOM_MAX_MODELS)
        return loom_fail(err, LOOM_EINVAL, "%s: a run has 1 to %d models, not %zu", path, LOOM_MAX_MODELS, n);
    /* a NaN never reaches disk, in the weights or in the Adam moments (a
     * resumed run would turn a non-finite moment into non-finite weights) */
    size_t nt = 0;
    for (size_t j = 0; j < n; j++) {
        const loom_run_model *r = &models[j];
        const bool optim = r->adam_m && r->adam_v;
        const float *bufs[4] = {r->m->w, optim ? r->adam_m : NULL, optim ? r->adam_v : NULL, r->ema};
        static const char *const what[4] = {"parameter", "Adam first moment", "Adam second moment",
                                            "moving average"};
        for (int b = 0; b < 4; b++)
            for (size_t i = 0; bufs[b] && i < r->m->nfloats; i++)
                if (!isfinite(bufs[b][i]))
                    return loom_fail(err, LOOM_ENAN, "%s: not written: %s%s%s %zu is %g", path,
                                     n > 1 ? r->role : "", n > 1 ? " " : "", what[b], i,
                                     (double)bufs[b][i]);
        nt += ((optim ? 3 : 1) + (r->ema ? 1 : 0)) * r->m->nparams;
    }
    loom_tensor *t = calloc(nt, sizeof *t);
    char (*names)[TNAME] = calloc(nt, sizeof *names);
    char *cfg = loom_run_config_json(models, n, o);
    char (*adam_keys)[LOOM_ROLELEN + 8] = calloc(n, sizeof *adam_keys);
    char (*adam_vals)[32] = calloc(n, sizeof *adam_vals);
    loom_kv *meta = calloc(9 + n, sizeof *meta);
    loom_status s = LOOM_OK;
    if (!t || !names || !cfg || !adam_keys || !adam_vals || !meta) {
        s = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t k = 0;
    /* per model: parameters, then first moments, then second moments, then
     * the moving average */
    for (size_t j = 0; j < n; j++) {
        const loom_run_model *r = &models[j];
        const size_t np = r->m->nparams, parts = (r->adam_m && r->adam_v ? 3 : 1) + (r->ema ? 1 : 0);
        for (size_t q = 0; q < parts * np; q++, k++) {
            const loom_param *p = &r->m->params[q % np];
            const bool ema = r->ema && q >= (parts - 1) * np;
            const float *base = ema ? r->ema : q < np ? r->m->w : (q < 2 * np ? r->adam_m : r->adam_v);
            tensor_name(names[k], sizeof names[k], ema ? "ema." : q < np ? "" : (q < 2 * np ? "optim.m." : "optim.v."),
                        n, r->role, p->name);
            t[k].name = names[k];
            t[k].dtype = LOOM_F32;
            t[k].ndim = p->ndim;
            for (int d = 0; d < p->ndim; d++) t[k].shape[d] = p->shape[d];
            t[k].data = base + p->offset;
        }
    }
    char step[32], rng[80], epoch[32], index[32];
    snprintf(step, sizeof step, "%ld", st ? st->step : 0L);
    snprintf(rng, sizeof rng, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
             st ? st->rng.s[0] : 0, st ? st->rng.s[1] : 0, st ? st->rng.s[2] : 0, st ? st->rng.s[3] : 0);
    snprintf(epoch, sizeof epoch, "%zu", st ? st->epoch : 0);
    snprintf(index, sizeof index, "%zu", st ? st->index : 0);
    size_t nm = 0;
    meta[nm++] = (loom_kv){"format", FORMAT};
    meta[nm++] = (loom_kv){"config", cfg};
    meta[nm++] = (loom_kv){"step", step};
    meta[nm++] = (loom_kv){"rng", rng};
    meta[nm++] = (loom_kv){"epoch", epoch};
    meta[nm++] = (loom_kv){"index", index};
    char bstep[32], bval[40];
    if (st && st->best_step > 0) {
        snprintf(bstep, sizeof bstep, "%ld", st->best_step);
        snprintf(bval, sizeof bval, "%.17g", st->best_valid);
        meta[nm++] = (loom_kv){"best_step", bstep};
        meta[nm++] = (loom_kv){"best_valid", bval};
    }
    for (size_t j = 0; j < n; j++) {
        snprintf(adam_keys[j], sizeof adam_keys[j], n > 1 ? "adam_t.%s" : "adam_t", models[j].role);
        snprintf(adam_vals[j], sizeof adam_vals[j], "%ld", models[j].adam_t);
        meta[nm++] = (loom_kv){adam_keys[j], adam_vals[j]};
    }
    s = loom_safetensors_write(path, t, nt, meta, nm, err);
done:
    free(t), free(names), free(cfg), free(adam_keys), free(adam_vals), free(meta);
    return s;
}

loom_status loom_checkpoint_save(const char *path, const loom_model *m, const float *adam_m,
                                 const float *adam_v, const loom_train_state *st,
                                 const loom_train_opts *o, loom_error *err) {
    loom_run_model r = {.role = "model", .m = (loom_model *)m, .adam_m = (float *)adam_m,
                        .adam_v = (float *)adam_v, .adam_t = st ? st->adam_t : 0};
    return loom_run_save(path, &r, 1, st, o, err);
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
                                size_t nmodels, const char *role, loom_error *err) {
    loom_param *params = malloc(LOOM_MAX_PARAMS * sizeof *params);
    if (!params) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    size_t np = 0, nf = 0;
    loom_error e2;
    loom_status s = loom_model_layout(cfg, params, &np, &nf, &e2);
    if (s) s = loom_fail(err, LOOM_EFORMAT, "%s: %s", path, e2.msg);
    for (size_t k = 0; k < np && !s; k++) {
        const loom_param *p = &params[k];
        char nm[TNAME];
        tensor_name(nm, sizeof nm, "", nmodels, role, p->name);
        const loom_tensor *t = loom_st_find(f, nm);
        bool same = t && t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!t)
            s = loom_fail(err, LOOM_EFORMAT, "%s: missing tensor %s for model %s", path, nm,
                          cfg->model);
        else if (!same) {
            char want[96] = "";
            for (int d = 0; d < p->ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%zu", d ? " x " : "",
                         p->shape[d]);
            s = loom_fail(err, LOOM_EFORMAT, "%s: tensor %s does not have the shape the config "
                          "gives it (%s)", path, nm, want);
        }
    }
    free(params);
    return s;
}

void loom_run_models_free(loom_run_model *models, size_t n) {
    for (size_t j = 0; j < n; j++) {
        loom_model_free(models[j].m);
        free(models[j].adam_m), free(models[j].adam_v), free(models[j].ema);
        models[j].m = NULL, models[j].adam_m = models[j].adam_v = models[j].ema = NULL;
    }
}

/* the model (index into models) a tensor name of the file belongs to, or -1 */
static int owner_of(const char *nm, const loom_run_model *models, size_t n) {
    const char *base = strncmp(nm, "optim.m.", 8) == 0 || strncmp(nm, "optim.v.", 8) == 0 ? nm + 8 :
                       strncmp(nm, "ema.", 4) == 0 ? nm + 4 : nm;
    for (size_t j = 0; j < n; j++) {
        const char *rest = base;
        if (n > 1) {
            size_t rl = strlen(models[j].role);
            if (strncmp(base, models[j].role, rl) != 0 || base[rl] != '.') continue;
            rest = base + rl + 1;
        }
        if (loom_model_param(models[j].m, rest)) return (int)j;
    }
    return -1;
}

loom_status loom_run_load(const char *path, int nthreads, bool optim, loom_run_model *models,
                          size_t *nout, loom_train_state *st, loom_train_opts *o, loom_error *err) {
    *nout = 0;
    memset(models, 0, LOOM_MAX_MODELS * sizeof *models);
    loom_st_file *f;
    loom_status s = loom_safetensors_open(&f, path, err);
    if (s) return s;
    const char *fmt = loom_st_meta(f, "format"), *cfgjson = loom_st_meta(f, "config");
    loom_config cfgs[LOOM_MAX_MODELS];
    char roles[LOOM_MAX_MODELS][LOOM_ROLELEN];
    size_t n = 0;
    loom_train_opts opts;
    memset(&opts, 0, sizeof opts);
    if (!fmt || strcmp(fmt, FORMAT) != 0) {
        s = loom_fail(err, LOOM_EFORMAT, "%s: not a loom checkpoint (metadata \"format\" is %s%s%s)",
                      path, fmt ? "\"" : "missing", fmt ? fmt : "", fmt ? "\"" : "");
        goto fail;
    }
    if (!cfgjson) {
        s = loom_fail(err, LOOM_EFORMAT, "%s: metadata \"config\" missing", path);
        goto fail;
    }
    if ((s = loom_run_config_parse(cfgs, roles, &n, &opts, cfgjson, path, err))) goto fail;
    /* Every parameter must be in the file with its shape before the model is
     * allocated: otherwise a few bytes of config ("hidden": 4096, "layers": 64)
     * would make us allocate the 100+ GB such a model needs. */
    for (size_t j = 0; j < n; j++)
        if ((s = check_layout(f, path, &cfgs[j], n, roles[j], err))) goto fail;
    size_t expected = 0;
    /* the optimiser state is all or nothing */
    char first_m[TNAME];
    for (size_t j = 0; j < n; j++) {
        snprintf(models[j].role, sizeof models[j].role, "%s", roles[j]);
        if ((s = loom_model_create(&models[j].m, &cfgs[j], nthreads, err))) goto fail;
    }
    tensor_name(first_m, sizeof first_m, "optim.m.", n, roles[0], models[0].m->params[0].name);
    const bool has_optim = loom_st_find(f, first_m) != NULL;
    tensor_name(first_m, sizeof first_m, "ema.", n, roles[0], models[0].m->params[0].name);
    const bool has_ema = loom_st_find(f, first_m) != NULL;
    for (size_t j = 0; j < n; j++) expected += ((has_optim ? 3 : 1) + (has_ema ? 1 : 0)) * models[j].m->nparams;
    if (loom_st_count(f) != expected) {
        /* name the first tensor that does not belong */
        for (size_t k = 0; k < loom_st_count(f); k++) {
            const char *nm = loom_st_get(f, k)->name;
            if (owner_of(nm, models, n) < 0) {
                s = loom_fail(err, LOOM_EFORMAT, "%s: unexpected tensor %s for model %s", path, nm,
                              n > 1 ? "run" : cfgs[0].model);
                goto fail;
            }
        }
        s = loom_fail(err, LOOM_EFORMAT, "%s: has %zu tensors, the model needs %zu", path,
                      loom_st_count(f), expected);
        goto fail;
    }
    for (size_t j = 0; j < n; j++) {
        loom_run_model *r = &models[j];
        loom_model *m = r->m;
        if (optim) {
            r->adam_m = calloc(m->nfloats, sizeof *r->adam_m), r->adam_v = calloc(m->nfloats, sizeof *r->adam_v);
            if (has_ema) r->ema = calloc(m->nfloats, sizeof *r->ema);
            if (!r->adam_m || !r->adam_v || (has_ema && !r->ema)) {
                s = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
                goto fail;
            }
        }
        for (size_t k = 0; k < m->nparams; k++) {
            const loom_param *p = &m->params[k];
            char nm[TNAME];
            tensor_name(nm, sizeof nm, "", n, r->role, p->name);
            if ((s = loom_st_read_f32(f, nm, m->w + p->offset, p->ndim, p->shape, err))) goto fail;
            if (has_ema) { /* for inference the average replaces the weights */
                tensor_name(nm, sizeof nm, "ema.", n, r->role, p->name);
                float *dst = optim ? r->ema + p->offset : m->w + p->offset;
                if ((s = loom_st_read_f32(f, nm, dst, p->ndim, p->shape, err))) goto fail;
            }
            if (!has_optim || !optim) continue;
            float *dst[2] = {r->adam_m + p->offset, r->adam_v + p->offset};
            for (int w = 0; w < 2; w++) {
                tensor_name(nm, sizeof nm, w ? "optim.v." : "optim.m.", n, r->role, p->name);
                if ((s = loom_st_read_f32(f, nm, dst[w], p->ndim, p->shape, err))) goto fail;
            }
        }
        for (size_t i = 0; r->ema && i < m->nfloats; i++)
            if (!isfinite(r->ema[i])) {
                s = loom_fail(err, LOOM_EFORMAT, "%s: moving average %zu is not finite", path, i);
                goto fail;
            }
        for (size_t i = 0; i < m->nfloats; i++)
            if (!isfinite(m->w[i])) {
                s = loom_fail(err, LOOM_EFORMAT, "%s: parameter %zu%s%s is not finite", path, i,
                              n > 1 ? " of " : "", n > 1 ? r->role : "");
                goto fail;
            }
        loom_error me; /* colour models: masked weights must be 0, rejected (not re-zeroed) */
        if (loom_model_check_masks(m, &me)) {
            s = loom_fail(err, LOOM_EFORMAT, "%s: %s%s%s", path, n > 1 ? r->role : "", n > 1 ? ": " : "", me.msg);
            goto fail;
        }
    }
    if (st) {
        unsigned long long step = 0, epoch = 0, index = 0;
        if ((s = meta_ulong(f, path, "step", &step, err)) ||
            (s = meta_ulong(f, path, "epoch", &epoch, err)) ||
            (s = meta_ulong(f, path, "index", &index, err)))
            goto fail;
        for (size_t j = 0; j < n; j++) {
            char key[LOOM_ROLELEN + 8];
            unsigned long long t = 0;
            snprintf(key, sizeof key, n > 1 ? "adam_t.%s" : "adam_t", roles[j]);
            if ((s = meta_ulong(f, path, key, &t, err))) goto fail;
            models[j].adam_t = (long)t;
        }
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
        st->step = (long)step, st->epoch = epoch, st->index = index, st->adam_t = models[0].adam_t;
        /* optional (absent in runs from before): the best validation */
        const char *bv = loom_st_meta(f, "best_valid");
        char *end = NULL;
        st->best_step = 0, st->best_valid = NAN;
        if (loom_st_meta(f, "best_step")) {
            if ((s = meta_ulong(f, path, "best_step", &step, err))) goto fail;
            st->best_step = (long)step;
            st->best_valid = bv ? strtod(bv, &end) : NAN;
            if (!bv || *end || !isfinite(st->best_valid)) {
                s = loom_fail(err, LOOM_EFORMAT, "%s: metadata \"best_valid\" must be a number", path);
                goto fail;
            }
        }
    }
    if (o) *o = opts;
    else loom_train_opts_free(&opts);
    loom_safetensors_close(f);
    *nout = n;
    return LOOM_OK;
fail:
    loom_safetensors_close(f);
    loom_run_models_free(models, n);
    loom_train_opts_free(&opts);
    return s;
}

loom_status loom_checkpoint_load(const char *path, int nthreads, loom_model **out, float **adam_m,
                                 float **adam_v, loom_train_state *st, loom_train_opts *o,
                                 loom_error *err) {
    *out = NULL;
    if (adam_m) *adam_m = NULL;
    if (adam_v) *adam_v = NULL;
    loom_run_model models[LOOM_MAX_MODELS];
    size_t n = 0;
    loom_status s = loom_run_load(path, nthreads, adam_m && adam_v, models, &n, st, o, err);
    if (s) return s;
    if (n != 1) {
        loom_run_models_free(models, n);
        if (o) loom_train_opts_free(o);
        return loom_fail(err, LOOM_EINVAL, "%s: a run of %zu models; this command takes a single model",
                         path, n);
    }
    *out = models[0].m;
    free(models[0].ema); /* a resume goes through loom_run_load */
    if (adam_m) *adam_m = models[0].adam_m;
    if (adam_v) *adam_v = models[0].adam_v;
    return LOOM_OK;
}
