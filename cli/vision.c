/* Helpers of the commands that look at images (renet, detect, score). */
#include "cli.h"

#include "losses/losses.h"
#include "nn/seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_renet_config(loom_config *cfg, const char *cell, size_t patch, bool layers_given,
                      bool hidden_given) {
    if (strcmp(cfg->model, "renet") != 0) {
        if (patch) cli_die(2, "--patch: only --model renet takes it (model %s)", cfg->model);
        return;
    }
    loom_cell k;
    if (!cell) cell = "lstm";
    if (loom_cell_parse(cell, &k) != 0) cli_die(2, "--cell %s: unknown cell (known: lstm, gru, rnn)", cell);
    snprintf(cfg->cell, sizeof cfg->cell, "%s", cell);
    cfg->patch = patch ? patch : 2;
    if (!layers_given) cfg->layers = 2;
    if (!hidden_given) cfg->hidden = 64;
}

void cli_classify(loom_model *m, const loom_images *set, size_t n, size_t batch, double *acc,
                  double *xent) {
    const size_t K = loom_model_predict_floats(m);
    float *logits = malloc((n ? n : 1) * K * sizeof *logits);
    loom_error err;
    if (!logits) cli_die(1, "out of memory");
    loom_status st = loom_model_predict(m, logits, NULL, set->pixels, n, batch, &err);
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
