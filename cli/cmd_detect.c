/* loom detect A B: a classifier two-sample test (docs/scores.md). */
#include "cli.h"

#include "eval/score.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the detector's flags, shared with loom score */
static void cli_detect_args(loom_detect_opts *o, size_t *steps, size_t *hidden, size_t *layers, size_t *patch) {
    if (*steps) o->steps = *steps;
    if (*hidden) o->hidden = *hidden;
    if (*layers) o->layers = *layers;
    if (*patch) o->patch = *patch;
}

/* exits 2 naming both sets when they cannot be compared */
void cli_check_same_shape(const loom_images *a, const char *na, const loom_images *b, const char *nb) {
    const size_t ca = a->c ? a->c : 1, cb = b->c ? b->c : 1;
    if (a->h != b->h || a->w != b->w)
        cli_die(2, "%s has %zux%zu images but %s has %zux%zu: the sets must have one image size", na, a->h, a->w,
                nb, b->h, b->w);
    if (ca != cb)
        cli_die(2, "%s has %zu channel%s but %s has %zu: the sets must have the same channels", na, ca,
                ca == 1 ? "" : "s", nb, cb);
}

int cmd_detect(int argc, char **argv) {
    size_t n = 1000, threads = 1, steps = 0, hidden = 0, layers = 0, patch = 0;
    uint64_t seed = 1;
    bool json = false;
    cli_arg args[] = {
        {"n", ARG_SIZE, &n, 4, 1e7, "images per set at most (default 1000; a run draws this many samples)", false},
        {"steps", ARG_SIZE, &steps, 1, 1e7, "detector training steps (default 300, batch 32)", false},
        {"hidden", ARG_SIZE, &hidden, 1, 1024, "detector renet hidden units per direction (default 16)", false},
        {"layers", ARG_SIZE, &layers, 1, 16, "detector renet layers (default 1)", false},
        {"patch", ARG_SIZE, &patch, 1, 16, "detector renet patch size (default 4)", false},
        {"seed", ARG_U64, &seed, 0, 0, "seed of the samples, the detector's init and batch order (default 1)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default 1)", false},
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
    };
    const char *pos[2];
    int npos;
    cli_parse("detect", "A B [--n N] [--steps S] [--seed S] [--json]   (A, B: a PNG folder or data set, "
              "DATA:train|test, or a run directory = --n samples)", argc, argv, args, sizeof args / sizeof args[0],
              pos, 2, &npos);
    if (npos != 2) cli_die(2, "detect needs two image sets A and B (see 'loom detect --help')");
    loom_images a, b;
    char wa[512], wb[512];
    cli_image_set(&a, pos[0], n, seed, (int)threads, wa, sizeof wa);
    cli_image_set(&b, pos[1], n, seed + 1, (int)threads, wb, sizeof wb);
    cli_check_same_shape(&a, pos[0], &b, pos[1]);
    loom_detect_opts o;
    loom_detect_opts_default(&o);
    cli_detect_args(&o, &steps, &hidden, &layers, &patch);
    o.seed = seed, o.threads = (int)threads;
    loom_detect_result r;
    loom_error err;
    double t0 = cli_now();
    loom_status st = loom_detect(&r, &a, &b, &o, &err);
    if (st) cli_die_err(st, &err);
    if (json)
        printf("{\"model\": \"renet\", \"step\": %zu, \"checkpoint\": null, \"kind\": \"auc\", \"auc\": %.6f, "
               "\"auc_low\": %.6f, \"auc_high\": %.6f, \"accuracy\": %.6f, \"n\": %zu, \"n_train\": %zu, "
               "\"n_test\": %zu, \"interval\": \"DeLong 95%%\", \"a\": \"%s\", \"b\": \"%s\"}\n",
               o.steps, r.auc, r.auc_low, r.auc_high, r.accuracy, r.n, r.n_train, r.n_test, wa, wb);
    else
        printf("A: %s\nB: %s\ndetector (renet, %zu steps) on %zu held-out images of each: ROC AUC %.4f "
               "(95%% interval %.4f-%.4f, DeLong), accuracy %.4f (%.1f s)\n",
               wa, wb, o.steps, r.n_test, r.auc, r.auc_low, r.auc_high, r.accuracy, cli_now() - t0);
    loom_images_free(&a), loom_images_free(&b);
    return 0;
}
