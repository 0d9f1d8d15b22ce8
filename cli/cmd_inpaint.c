/* loom inpaint: fill any masked region of one image (docs/inpaint.md) */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* one PNG as the model's channels: RGB for colour models (gray promoted),
 * BT.601 luma for gray ones, as --gray converts training data */
static void read_png(loom_images *im, const char *flag, const char *path, size_t channels) {
    loom_error err;
    loom_status st = loom_png_read(im, path, channels == 3 ? 3 : 0, &err);
    if (st) cli_die(st == LOOM_EIO || st == LOOM_ENOMEM ? 1 : 2, "--%s %s", flag, err.msg);
    if (channels == 1 && im->c == 3 && (st = loom_images_to_gray(im, &err)))
        cli_die_err(st, &err);
}

int cmd_inpaint(int argc, char **argv) {
    size_t K = 4, M = 64, iters = 20, threads = (size_t)cli_default_threads(), label = 0, scale = 0;
    uint64_t seed = 1;
    const char *out = NULL, *out_dir = NULL, *image = NULL, *mask = NULL;
    bool json = false;
    cli_arg args[] = {
        {"image", ARG_STR, &image, 0, 0, "PNG of the model's size: the image to fill", false},
        {"mask", ARG_STR, &mask, 0, 0, "PNG of the image's size: pixels > 127 are hidden (filled)", false},
        {"n", ARG_SIZE, &K, 1, 1000, "fills (default 4)", false},
        {"candidates", ARG_SIZE, &M, 1, 100000,
         "autoregressive models: candidates drawn and weighted, resampled into the fills (default 64)", false},
        {"iters", ARG_SIZE, &iters, 1, 10000, "draw, rae: reconstruction rounds (default 20)", false},
        {"label", ARG_SIZE, &label, 0, 1e6, "class of the image (conditional models)", false},
        {"seed", ARG_U64, &seed, 0, 0, "seed (default 1)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"scale", ARG_SIZE, &scale, 1, 64, "enlarge the grid K times, nearest neighbour (default: the least K making it 512 px wide)", false},
        {"out", ARG_STR, &out, 0, 0, "PNG file: original | masked | fills", false},
        {"out-dir", ARG_STR, &out_dir, 0, 0, "also write each fill as DIR/fill_NNN.png at the image's size", false},
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
    };
    const size_t nargs = sizeof args / sizeof args[0];
    const char *pos[1];
    int npos;
    cli_parse("inpaint", "RUN_DIR|CHECKPOINT --image IMG.png --mask MASK.png [--n K] --out FILE.png", argc,
              argv, args, nargs, pos, 1, &npos);
    if (npos != 1) cli_die(2, "inpaint needs a run directory or checkpoint (see 'loom inpaint --help')");
    if (!image) cli_die(2, "inpaint needs --image IMG.png (see 'loom inpaint --help')");
    if (!mask) cli_die(2, "inpaint needs --mask MASK.png (see 'loom inpaint --help')");
    if (!out) cli_die(2, "inpaint needs --out FILE.png (see 'loom inpaint --help')");
    loom_train_opts o;
    loom_train_state ts;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, &ts);
    const loom_config *c = &m->cfg;
    const size_t H = c->height, W = c->width, HW = H * W, C = loom_channels(c), EX = C * HW;
    const bool sir = m->ops->sample_given != NULL;
    if (!sir && !m->ops->reconstruct)
        cli_die(2, "inpaint: model %s can neither draw pixels given others nor reconstruct", m->ops->name);
    if (cli_find(args, nargs, "candidates")->seen && !sir)
        cli_die(2, "--candidates: model %s is not autoregressive (it inpaints by iterated reconstruction)",
                m->ops->name);
    if (cli_find(args, nargs, "iters")->seen && sir)
        cli_die(2, "--iters: model %s inpaints by importance resampling, not by iteration", m->ops->name);
    const bool have_label = cli_find(args, nargs, "label")->seen;
    if (have_label && !c->nclasses) cli_die(2, "--label: this model is not class-conditional");
    if (c->nclasses && !have_label) cli_die(2, "inpaint: the conditional model needs --label K (the image's class)");
    if (have_label && label >= (size_t)c->nclasses)
        cli_die(2, "--label %zu: the model has classes 0..%d", label, c->nclasses - 1);
    const int32_t lab = (int32_t)label;

    loom_images im, mk;
    read_png(&im, "image", image, C);
    if (im.h != H || im.w != W)
        cli_die(2, "--image %s: %zux%zu but the model takes %zux%zu", image, im.w, im.h, W, H);
    read_png(&mk, "mask", mask, 1);
    if (mk.h != H || mk.w != W)
        cli_die(2, "--mask %s: %zux%zu but the image is %zux%zu", mask, mk.w, mk.h, W, H);
    size_t nh = 0;
    for (size_t p = 0; p < HW; p++) nh += mk.pixels[p] > 127;
    if (nh == 0) cli_die(2, "--mask %s: no pixel is above 127, so nothing is hidden", mask);
    if (nh == HW) cli_die(2, "--mask %s: every pixel is above 127, so nothing is given (loom sample draws whole images)", mask);
    uint8_t *hidden = malloc(HW);
    if (!hidden) cli_die(1, "out of memory");
    for (size_t p = 0; p < HW; p++) hidden[p] = mk.pixels[p] > 127;

    uint8_t *fills = malloc(K * EX);
    if (!fills) cli_die(1, "out of memory for %zu fills", K);
    loom_error err;
    loom_inpaint_result res;
    double t0 = cli_now();
    loom_status st = loom_model_inpaint(m, fills, &res, im.pixels, hidden, c->nclasses ? &lab : NULL, M, K,
                                        iters, seed, &err);
    if (st) cli_die_err(st, &err);
    const double dt = cli_now() - t0;

    /* the numbers: -log p(hidden | given) = -log p(x) + log p(given) (exact
     * models), or the fills' squared error on the hidden pixels (autoencoders) */
    const bool exact_px = sir && (loom_model_caps(m) & LOOM_CAP_EXACT_NLL);
    double nll_hidden = NAN, mse = 0.0;
    const char *kind = "none";
    if (exact_px) {
        double nll_x;
        if ((st = loom_model_nll(m, &nll_x, im.pixels, c->nclasses ? &lab : NULL, 1, 1, &err))) cli_die_err(st, &err);
        nll_hidden = nll_x + res.log_given;
        kind = res.exact ? "exact" : "estimated";
    }
    if (!sir) {
        for (size_t k = 0; k < K; k++)
            for (size_t q = 0; q < EX; q++)
                if (hidden[q % HW]) {
                    const double d = ((double)fills[k * EX + q] - (double)im.pixels[q]) / 255.0;
                    mse += d * d;
                }
        mse /= (double)(K * nh * C);
        kind = "mse";
    }

    /* original | masked | fills; the hidden area of the masked panel is a
     * checkerboard (gray) or magenta (RGB), never the grid's mid-gray padding */
    uint8_t *grid = malloc((2 + K) * EX);
    if (!grid) cli_die(1, "out of memory");
    memcpy(grid, im.pixels, EX);
    loom_inpaint_masked_view(grid + EX, im.pixels, hidden, C, H, W);
    memcpy(grid + 2 * EX, fills, K * EX);
    cli_write_grid_scaled(out, grid, 2 + K, C, H, W, 2 + K, scale, 128);
    if (out_dir) {
        if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
            cli_die(1, "--out-dir %s: %s", out_dir, strerror(errno));
        for (size_t k = 0; k < K; k++) {
            char path[4096];
            if ((size_t)snprintf(path, sizeof path, "%s/fill_%03zu.png", out_dir, k) >= sizeof path)
                cli_die(2, "--out-dir %s: path too long", out_dir);
            loom_status ws = C == 3 ? loom_png_write_rgb(path, fills + k * EX, H, W, &err)
                                    : loom_png_write_gray(path, fills + k * EX, H, W, &err);
            if (ws) cli_die_err(ws, &err);
        }
    }

    const double dims = (double)(nh * C);
    if (json) {
        char nll_s[64] = "null", bpd_s[64] = "null", ess_s[64] = "null", mse_s[64] = "null";
        if (exact_px) {
            snprintf(nll_s, sizeof nll_s, "%.6f", nll_hidden);
            snprintf(bpd_s, sizeof bpd_s, "%.6f", nll_hidden / dims / log(2.0));
        }
        if (sir) snprintf(ess_s, sizeof ess_s, "%.4f", res.ess);
        else snprintf(mse_s, sizeof mse_s, "%.6f", mse);
        printf("{\"model\": \"%s\", \"step\": %ld, \"checkpoint\": \"%s\", \"kind\": \"%s\", "
               "\"nll_hidden\": %s, \"bits_per_dim_hidden\": %s, \"ess\": %s, \"n\": %zu, "
               "\"candidates\": %zu, \"hidden_pixels\": %zu, \"method\": \"%s\", \"approximate\": %s, "
               "\"mse_hidden\": %s, \"seconds\": %.3f}\n",
               m->ops->name, ts.step, cli_checkpoint_path(pos[0]), kind, nll_s, bpd_s, ess_s, K,
               res.candidates, nh, res.method, sir ? "false" : "true", mse_s, dt);
    } else if (sir) {
        printf("%zu hidden pixels, %zu candidates, effective sample size %.2f, %zu fills -> %s\n", nh,
               res.candidates, res.ess, K, out);
        if (exact_px)
            printf("hidden part: -log p(hidden | given) = %.2f nats (%.4f bits/dim), %s\n", nll_hidden,
                   nll_hidden / dims / log(2.0),
                   res.exact ? "exact (no given pixel follows a hidden one)"
                             : "estimated: -log p(x) + log mean w, a lower bound in expectation");
    } else {
        printf("%zu hidden pixels, %zu fills by %zu rounds of clamped reconstruction (approximate), "
               "mean squared error on the hidden pixels %.4f -> %s\n", nh, K, iters, mse, out);
    }
    free(grid), free(fills), free(hidden);
    loom_images_free(&im), loom_images_free(&mk);
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}
