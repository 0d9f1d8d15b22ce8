/* Helpers of the commands that look at images (renet, detect, score). */
#include "cli.h"

#include "data/scenes.h"
#include "eval/score.h"
#include "losses/losses.h"
#include "nn/seq.h"
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cli_renet_config(loom_config *cfg, const char *cell, size_t patch, bool layers_given,
                      bool hidden_given) {
    const bool seg = strcmp(cfg->model, "reseg") == 0;
    if (strcmp(cfg->model, "renet") != 0 && !seg) {
        if (patch && strcmp(cfg->model, "convlstm") != 0)
            cli_die(2, "--patch: only --model convlstm, renet or reseg takes it (model %s)", cfg->model);
        return;
    }
    loom_cell k;
    if (!cell) cell = "lstm";
    if (loom_cell_parse(cell, &k) != 0) cli_die(2, "--cell %s: unknown cell (known: lstm, gru, rnn)", cell);
    snprintf(cfg->cell, sizeof cfg->cell, "%s", cell);
    cfg->patch = patch ? patch : seg ? 4 : 2;
    if (!layers_given) cfg->layers = 2;
    if (!hidden_given) cfg->hidden = seg ? 32 : 64;
}

void cli_classify(loom_model *m, const loom_images *set, size_t n, size_t batch, double *acc,
                  double *xent) {
    const size_t K = loom_model_class_floats(m);
    float *logits = malloc((n ? n : 1) * K * sizeof *logits);
    loom_error err;
    if (!logits) cli_die(1, "out of memory");
    loom_status st = loom_model_classify(m, logits, NULL, set->pixels, n, batch, &err);
    if (st) cli_die_err(st, &err);
    size_t right = 0;
    for (size_t b = 0; b < n; b++) {
        const float *z = logits + b * K;
        size_t best = 0;
        for (size_t k = 1; k < K; k++) best = z[k] > z[best] ? k : best;
        right += (int32_t)best == set->labels[b];
    }
    for (size_t b = 0; b < n; b++)
        if (set->labels[b] < 0 || (size_t)set->labels[b] >= K)
            cli_die(2, "label %d of image %zu is outside the classifier's %zu classes", (int)set->labels[b], b, K);
    *xent = loom_class_xent(NULL, NULL, logits, set->labels, n, K, 0.0f) / (double)(n ? n : 1);
    *acc = (double)right / (double)(n ? n : 1);
    free(logits);
}

/* a run directory (with a checkpoint) or a checkpoint file */
static bool is_run(const char *spec) {
    struct stat sb;
    if (stat(spec, &sb) != 0) return false;
    if (S_ISDIR(sb.st_mode)) {
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s/checkpoint.safetensors", spec) >= sizeof p) return false;
        return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
    }
    const size_t L = strlen(spec);
    return S_ISREG(sb.st_mode) && L > 12 && strcmp(spec + L - 12, ".safetensors") == 0;
}

void cli_split_spec(const char *spec, char *data, size_t cap, const char **split) {
    const char *colon = strrchr(spec, ':');
    *split = "train";
    size_t len = strlen(spec);
    if (colon && (strcmp(colon + 1, "train") == 0 || strcmp(colon + 1, "test") == 0)) {
        *split = strcmp(colon + 1, "train") == 0 ? "train" : "test";
        len = (size_t)(colon - spec);
    }
    if (len >= cap) cli_die(2, "%s: data spec too long", spec);
    memcpy(data, spec, len);
    data[len] = 0;
}

void cli_image_set(loom_images *out, const char *spec, size_t n, uint64_t seed, int threads,
                   char *what, size_t cap) {
    memset(out, 0, sizeof *out);
    loom_error err;
    loom_status st;
    if (is_run(spec)) {
        loom_train_opts o;
        loom_train_state ts;
        loom_model *m = cli_load_model(spec, threads, &o, &ts);
        const char *why = m->ops->cannot_sample ? m->ops->cannot_sample(&m->cfg) : NULL;
        if (why) cli_die(2, "%s: model %s cannot draw samples (%s)", spec, m->ops->name, why);
        if (!n) cli_die(2, "%s: a run needs a number of samples (--n)", spec);
        const loom_config *c = &m->cfg;
        const size_t HW = loom_channels(c) * c->height * c->width;
        out->n = n, out->h = c->height, out->w = c->width, out->c = loom_channels(c), out->t = 1;
        out->pixels = calloc(n, HW);
        int32_t *labels = NULL;
        if (!out->pixels) cli_die(1, "out of memory for %zu samples", n);
        if (c->nclasses) { /* a conditional model: every class in turn */
            if (!(labels = malloc(n * sizeof *labels))) cli_die(1, "out of memory");
            for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(i % (size_t)c->nclasses);
        }
        if ((st = loom_model_sample(m, out->pixels, labels, n, 0, 1.0f, seed, &err))) cli_die_err(st, &err);
        snprintf(what, cap, "%zu samples of %s (step %ld, seed %llu)", n, cli_checkpoint_path(spec), ts.step,
                 (unsigned long long)seed);
        free(labels);
        loom_train_opts_free(&o);
        loom_model_free(m);
        return;
    }
    char data[1024];
    const char *split;
    cli_split_spec(spec, data, sizeof data, &split);
    if ((st = loom_images_load(out, data, split, &err))) cli_die_err(st, &err);
    char note[1024];
    cli_data_prepare(out, data, false, note, sizeof note);
    const size_t total = out->n;
    if (n && n < out->n) {
        /* a seeded random subset: the first n of a file may be sorted or
         * balanced by class, and a two-sample test needs independent draws */
        size_t *idx = malloc(out->n * sizeof *idx);
        if (!idx) cli_die(1, "out of memory");
        loom_rng r;
        loom_rng_seed(&r, seed ^ 0x5eed5e7ULL);
        for (size_t k = 0; k < out->n; k++) idx[k] = k;
        for (size_t k = 0; k < n; k++) { /* the first n of a Fisher-Yates shuffle */
            const size_t j = k + loom_rng_below(&r, out->n - k), t = idx[k];
            idx[k] = idx[j], idx[j] = t;
        }
        loom_images sub;
        if ((st = loom_images_gather(&sub, out, idx, n, &err))) cli_die_err(st, &err);
        sub.class_names = out->class_names, out->class_names = NULL;
        loom_images_free(out);
        *out = sub;
        free(idx);
    }
    if (out->n < total)
        snprintf(what, cap, "%zu of the %zu %s images of %s (seed %llu)", out->n, total, split, data,
                 (unsigned long long)seed);
    else
        snprintf(what, cap, "the %zu %s images of %s", out->n, split, data);
}

const char *cli_default_classifier(void) {
    static char path[4096];
    const char *env = getenv("LOOM_CLASSIFIER");
    if (env && *env) return env;
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return NULL;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    /* build/loom next to models/ in the source tree; PREFIX/bin/loom next to PREFIX/share/loom */
    static const char *const rel[] = {"../models/fmnist_renet.safetensors", "../share/loom/fmnist_renet.safetensors"};
    for (size_t i = 0; i < 2; i++) {
        struct stat sb;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", exe, rel[i]) >= sizeof path) return NULL;
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) return path;
    }
    return NULL;
}

void cli_segment_eval(loom_model *m, const loom_images *set, size_t n, size_t batch, uint8_t *pred,
                      double *pixel_acc, double *miou) {
    const size_t K = LOOM_SCENE_CLASSES, Hs = m->cfg.height / 2, W = m->cfg.width, P = Hs * W;
    const size_t chunk = 64;
    float *logits = malloc(chunk * P * K * sizeof *logits);
    uint8_t *pr = malloc((n ? n : 1) * P), *truth = malloc((n ? n : 1) * P);
    loom_error err;
    if (!logits || !pr || !truth) cli_die(1, "out of memory");
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        const size_t nb = LOOM_MIN(chunk, n - c0);
        const uint8_t *ex = set->pixels + c0 * 2 * P;
        loom_status st = loom_model_classify(m, logits, NULL, ex, nb, batch, &err);
        if (st) cli_die_err(st, &err);
        for (size_t b = 0; b < nb; b++)
            for (size_t q = 0; q < P; q++) {
                const float *z = logits + (b * P + q) * K;
                size_t best = 0;
                for (size_t k = 1; k < K; k++) best = z[k] > z[best] ? k : best;
                const uint8_t t = ex[b * 2 * P + P + q];
                pr[(c0 + b) * P + q] = (uint8_t)best;
                truth[(c0 + b) * P + q] = t < K ? t : 0; /* as the model reads it */
            }
    }
    loom_seg_scores(pixel_acc, miou, pr, truth, n * P, K);
    if (pred) memcpy(pred, pr, n * P);
    free(logits), free(pr), free(truth);
}
