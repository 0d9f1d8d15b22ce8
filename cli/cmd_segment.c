/* loom segment RUN --out masks.png: scenes, predicted and true label maps. */
#include "cli.h"

#include "data/scenes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* background black, then one colour per Fashion-MNIST class */
static const uint8_t palette[LOOM_SCENE_CLASSES][3] = {
    {0, 0, 0},     {230, 25, 75},  {60, 180, 75},  {255, 225, 25}, {0, 130, 200}, {245, 130, 48},
    {145, 30, 180}, {70, 240, 240}, {240, 50, 230}, {210, 245, 60}, {250, 190, 190}};

/* dst (3, P) planar RGB of the label map lab (P) */
static void colour(uint8_t *dst, const uint8_t *lab, size_t P) {
    for (size_t q = 0; q < P; q++)
        for (int c = 0; c < 3; c++) dst[c * P + q] = palette[lab[q] < LOOM_SCENE_CLASSES ? lab[q] : 0][c];
}

int cmd_segment(int argc, char **argv) {
    const char *out = NULL, *data = NULL;
    size_t n = 8, threads = 1, scale = 0;
    bool json = false;
    cli_arg args[] = {
        {"out", ARG_STR, &out, 0, 0, "PNG to write: a row per scene: the scene, the predicted map, the true map", false},
        {"n", ARG_SIZE, &n, 1, 1024, "test scenes (default 8)", false},
        {"data", ARG_STR, &data, 0, 0, "scenes (default: the run's)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default 1)", false},
        {"scale", ARG_SIZE, &scale, 1, 64, "enlarge the grid K times, nearest neighbour (default: the least K making it 512 px wide)", false},
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("segment", "RUN_DIR --out masks.png [--n N]", argc, argv, args, sizeof args / sizeof args[0], pos, 1,
              &npos);
    if (npos != 1) cli_die(2, "segment needs a run directory (see 'loom segment --help')");
    if (!out) cli_die(2, "segment needs --out masks.png");
    loom_train_opts o;
    loom_train_state ts;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, &ts);
    if (!m->ops->classify || m->ops->labelled)
        cli_die(2, "%s: model %s is not a segmenter (loom segment reads reseg runs)", pos[0], m->ops->name);
    loom_images set;
    cli_load_split(&set, data ? data : o.data, "test", &o, &m->cfg, false);
    if (n > set.n) n = set.n;
    const size_t Hs = m->cfg.height / 2, W = m->cfg.width, P = Hs * W;
    uint8_t *pred = malloc(n * P), *grid = calloc(3 * n, 3 * P);
    if (!pred || !grid) cli_die(1, "out of memory");
    double acc, miou;
    cli_segment_eval(m, &set, n, 16, pred, &acc, &miou);
    for (size_t b = 0; b < n; b++) {
        const uint8_t *scene = set.pixels + b * 2 * P, *truth = scene + P;
        uint8_t *row = grid + b * 3 * 3 * P;
        for (int c = 0; c < 3; c++) memcpy(row + c * P, scene, P); /* gray as RGB */
        colour(row + 3 * P, pred + b * P, P);
        colour(row + 6 * P, truth, P);
    }
    cli_write_grid_scaled(out, grid, 3 * n, 3, Hs, W, 3, scale, 128);
    if (json)
        printf("{\"model\": \"%s\", \"step\": %ld, \"checkpoint\": \"%s\", \"kind\": \"pixel_accuracy\", "
               "\"pixel_accuracy\": %.6f, \"mean_iou\": %.6f, \"images\": %zu, \"out\": \"%s\"}\n",
               m->cfg.model, ts.step, cli_checkpoint_path(pos[0]), acc, miou, n, out);
    else
        printf("%s: %zu test scenes (columns: scene, predicted labels, true labels); pixel accuracy %.4f, "
               "mean IoU %.4f on them\n", out, n, acc, miou);
    free(pred), free(grid);
    loom_images_free(&set);
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}
