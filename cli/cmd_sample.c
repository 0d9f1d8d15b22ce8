/* loom sample, loom complete */
#include "cli.h"
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* frames (n, T, h, w) -> an animated GIF of T grids (one frame per stage, the
 * last held 1 s), each laid out like the PNG grid */
static void write_gif(const char *path, const uint8_t *frames, size_t n, size_t T, size_t h, size_t w,
                      size_t cols) {
    loom_error err;
    uint8_t *one = malloc(n * h * w), *all = NULL, *grid = NULL;
    uint16_t *delays = malloc(T * sizeof *delays);
    size_t gh = 0, gw = 0;
    if (!one || !delays) cli_die(1, "out of memory");
    for (size_t t = 0; t < T; t++) {
        for (size_t b = 0; b < n; b++) memcpy(one + b * h * w, frames + (b * T + t) * h * w, h * w);
        loom_status st = loom_grid(&grid, &gh, &gw, one, n, h, w, cols, 1, 128, &err);
        if (st) cli_die_err(st, &err);
        if (!all && !(all = malloc(T * gh * gw))) cli_die(1, "out of memory for a %zu-frame GIF", T);
        memcpy(all + t * gh * gw, grid, gh * gw);
        free(grid);
        delays[t] = t + 1 < T ? LOOM_GIF_DELAY : 100;
    }
    loom_status st = loom_gif_write(path, all, T, 1, gh, gw, delays, &err);
    if (st) cli_die_err(st, &err);
    free(one), free(all), free(delays);
}

int cmd_sample(int argc, char **argv) {
    size_t n = 16, threads = (size_t)cli_default_threads(), cols = 0;
    double temperature = 1.0;
    uint64_t seed = 1;
    const char *out = NULL, *label = NULL, *steps_png = NULL, *gif = NULL, *gemm = NULL, *precision = NULL;
    cli_arg args[] = {
        {"steps-png", ARG_STR, &steps_png, 0, 0, "staged models (draw): also write every stage, one row per image", false},
        {"gif", ARG_STR, &gif, 0, 0, "staged models (draw): also write an animated GIF of the grid, one frame per stage", false},
        {"n", ARG_SIZE, &n, 1, 100000, "images (default 16)", false},
        {"temperature", ARG_DOUBLE, &temperature, 1e-6, 100, "softmax temperature (default 1)", false},
        {"seed", ARG_U64, &seed, 0, 0, "seed (default 1)", false},
        {"label", ARG_STR, &label, 0, 0, "class K, or 'all' for one row per class (conditional models)", false},
        {"cols", ARG_SIZE, &cols, 1, 10000, "grid columns (default: square)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"gemm", ARG_STR, &gemm, 0, 0, "matrix products: openblas or onednn (default: the faster for the model)", false},
        {"precision", ARG_STR, &precision, 0, 0, "matrix products' inputs: fp32 (default) or bf16", false},
        {"out", ARG_STR, &out, 0, 0, "PNG file to write", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("sample", "RUN_DIR|CHECKPOINT [--n N] [--temperature T] [--seed S] --out FILE.png", argc, argv,
              args, sizeof args / sizeof args[0], pos, 1, &npos);
    if (npos != 1) cli_die(2, "sample needs a run directory or checkpoint (see 'loom sample --help')");
    if (!out) cli_die(2, "sample needs --out FILE.png (see 'loom sample --help')");
    loom_train_opts o; /* the run's class names, for --label NAME */
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, NULL);
    cli_gemm(m, gemm, NULL, precision);
    const loom_config *c = &m->cfg;
    const size_t nframes = loom_model_nframes(m);
    if (steps_png && !nframes) cli_die(2, "--steps-png: model %s does not draw in stages", m->ops->name);
    if (gif && !nframes) cli_die(2, "--gif: model %s does not draw in stages", m->ops->name);
    int32_t *labels = NULL;
    if (label) {
        if (!c->nclasses) cli_die(2, "--label: this model is not class-conditional");
        if (strcmp(label, "all") == 0) {
            size_t per = n < (size_t)c->nclasses ? 1 : n / (size_t)c->nclasses;
            n = per * (size_t)c->nclasses, cols = per;
            labels = malloc(n * sizeof *labels);
            for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(i / per);
        } else {
            char *end;
            long k = strtol(label, &end, 10);
            for (size_t i = 0; (*end || end == label) && i < o.nclass_names && (int)i < c->nclasses; i++)
                if (strcmp(o.class_names[i], label) == 0) k = (long)i, end = (char *)"";
            if (*end || end == label || k < 0 || k >= c->nclasses)
                cli_die(2, "--label %s: the model has classes 0..%d%s%s%s (or 'all')", label, c->nclasses - 1,
                        o.class_names ? " (" : "", o.class_names ? o.class_names[0] : "",
                        o.class_names ? ", ...)" : "");
            labels = malloc(n * sizeof *labels);
            for (size_t i = 0; i < n; i++) labels[i] = (int32_t)k;
        }
    } else if (c->nclasses) {
        labels = malloc(n * sizeof *labels);
        for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(i % (size_t)c->nclasses);
    }
    const size_t C = loom_channels(c), EX = C * c->height * c->width; /* bytes per image (C, H, W) */
    uint8_t *imgs = calloc(n, EX);
    if (!imgs) cli_die(1, "out of memory");
    loom_error err;
    double t0 = cli_now();
    uint8_t *frames = NULL;
    loom_status st;
    if (steps_png || gif) {
        if (!loom_mul_ok(n * EX, nframes, &(size_t){0}) || !(frames = malloc(n * nframes * EX)))
            cli_die(1, "out of memory for %zu x %zu frames", n, nframes);
        st = loom_model_sample_frames(m, imgs, frames, labels, n, (float)temperature, seed, &err);
    } else {
        st = loom_model_sample(m, imgs, labels, n, 0, (float)temperature, seed, &err);
    }
    if (st) cli_die_err(st, &err);
    double dt = cli_now() - t0;
    cli_write_grid(out, imgs, n, C, c->height, c->width, cols ? cols : (size_t)ceil(sqrt((double)n)));
    if (gif) {
        write_gif(gif, frames, n, nframes, c->height, c->width, cols ? cols : (size_t)ceil(sqrt((double)n)));
        fprintf(stderr, "loom: %zu stages of %zu images -> %s\n", nframes, n, gif);
    }
    if (frames && steps_png) {
        cli_write_grid(steps_png, frames, n * nframes, C, c->height, c->width, nframes);
        fprintf(stderr, "loom: %zu stages of %zu images -> %s\n", nframes, n, steps_png);
    }
    free(frames);
    fprintf(stderr, "loom: %zu samples in %.2f s (%.2f ms/image) -> %s\n", n, dt, 1e3 * dt / (double)n, out);
    free(imgs), free(labels);
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}

int cmd_complete(int argc, char **argv) {
    size_t n = 8, rows = 0, samples = 3, threads = (size_t)cli_default_threads();
    double temperature = 1.0;
    uint64_t seed = 1;
    const char *out = NULL, *data = NULL;
    bool gray = false;
    cli_arg args[] = {
        {"rows", ARG_SIZE, &rows, 0, 4096, "keep the top K rows (default: half)", false},
        {"n", ARG_SIZE, &n, 1, 10000, "test images (default 8)", false},
        {"samples", ARG_SIZE, &samples, 1, 100, "completions per image (default 3)", false},
        {"temperature", ARG_DOUBLE, &temperature, 1e-6, 100, "softmax temperature (default 1)", false},
        {"seed", ARG_U64, &seed, 0, 0, "seed (default 1)", false},
        {"data", ARG_STR, &data, 0, 0, "data (default: the run's test set)", false},
        {"gray", ARG_FLAG, &gray, 0, 0, "convert RGB data to gray (BT.601; automatic for runs trained with --gray)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"out", ARG_STR, &out, 0, 0, "PNG file: rows of original | masked | completions", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("complete", "RUN_DIR|CHECKPOINT [--rows K] [--n N] --out FILE.png", argc, argv, args,
              sizeof args / sizeof args[0], pos, 1, &npos);
    if (npos != 1) cli_die(2, "complete needs a run directory or checkpoint (see 'loom complete --help')");
    if (!out) cli_die(2, "complete needs --out FILE.png (see 'loom complete --help')");
    loom_train_opts o;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, NULL);
    const loom_config *c = &m->cfg;
    /* images (C, H, W), EX bytes; keep = rows * W raster positions, every channel of them */
    const size_t H = c->height, W = c->width, HW = H * W, C = loom_channels(c), EX = C * HW;
    if (!(loom_model_caps(m) & LOOM_CAP_CONDITIONALS))
        cli_die(2, "complete: model %s is not autoregressive (no per-pixel conditionals to complete with)",
                m->ops->name);
    if (!cli_find(args, sizeof args / sizeof args[0], "rows")->seen) rows = H / 2;
    if (rows >= H) cli_die(2, "--rows %zu must be below the image height %zu", rows, H);
    loom_images set;
    cli_load_split(&set, data ? data : o.data, "test", &o, c, gray);
    if (n > set.n) n = set.n;
    const int32_t *lab = c->nclasses ? set.labels : NULL;
    if (c->nclasses && !lab) cli_die(2, "the conditional model needs labelled test images");
    for (size_t k = 0; lab && k < set.n; k++)
        if (lab[k] >= c->nclasses)
            cli_die(2, "%s: label %d of test image %zu is outside the model's %d classes", data ? data : o.data,
                    (int)lab[k], k, c->nclasses);
    {   /* n test images drawn like the validation split (seeded, stratified by
         * class), not the first n, which are often one class */
        size_t *order = malloc(set.n * sizeof *order);
        loom_images picked;
        loom_error e;
        if (!order || loom_images_order(order, &set, o.seed, &e) || loom_images_gather(&picked, &set, order, n, &e))
            cli_die(1, "complete: out of memory picking %zu test images", n);
        free(order);
        if (picked.labels) { /* say which classes: a check that they are mixed */
            printf("test images: %zu, seeded and stratified by class:", n);
            for (int k = 0; k < set.nclasses; k++) {
                size_t cnt = 0;
                for (size_t i = 0; i < n; i++) cnt += picked.labels[i] == k;
                printf(" %d=%zu", k, cnt);
            }
            printf("\n");
        }
        loom_images_free(&set);
        set = picked;
        lab = c->nclasses ? set.labels : NULL;
    }

    /* NLL of the hidden part: the per-pixel logits of the originals, (H, W, C, 256)
     * (loom_model_logits) against the pixels (C, H, W) */
    float *z = malloc(EX * 256 * sizeof *z);
    if (!z) cli_die(1, "out of memory");
    loom_error err;
    double hidden = 0.0;
    for (size_t k = 0; k < n; k++) {
        loom_status st = loom_model_logits(m, z, set.pixels + k * EX, lab ? lab + k : NULL, 1, &err);
        if (st) cli_die_err(st, &err);
        for (size_t ch = 0; ch < C; ch++)
            for (size_t p = rows * W; p < HW; p++) {
                const float *zp = z + (p * C + ch) * 256;
                double mx = zp[0], s = 0.0;
                for (int v = 1; v < 256; v++) mx = zp[v] > mx ? zp[v] : mx;
                for (int v = 0; v < 256; v++) s += exp(zp[v] - mx);
                hidden += log(s) + mx - zp[set.pixels[k * EX + ch * HW + p]];
            }
    }
    free(z);

    const size_t cols = 2 + samples;
    uint8_t *grid = malloc(n * cols * EX), *comp = malloc(n * samples * EX);
    int32_t *clab = lab ? malloc(n * samples * sizeof *clab) : NULL;
    if (!grid || !comp) cli_die(1, "out of memory");
    for (size_t k = 0; k < n; k++)
        for (size_t s = 0; s < samples; s++) {
            memcpy(comp + (k * samples + s) * EX, set.pixels + k * EX, EX);
            if (clab) clab[k * samples + s] = lab[k];
        }
    loom_status st = loom_model_sample(m, comp, clab, n * samples, rows * W, (float)temperature, seed, &err);
    if (st) cli_die_err(st, &err);
    for (size_t k = 0; k < n; k++) {
        uint8_t *row = grid + k * cols * EX;
        memcpy(row, set.pixels + k * EX, EX);
        for (size_t ch = 0; ch < C; ch++) {
            memcpy(row + EX + ch * HW, set.pixels + k * EX + ch * HW, rows * W);
            memset(row + EX + ch * HW + rows * W, 128, HW - rows * W); /* hidden: mid gray */
        }
        memcpy(row + 2 * EX, comp + k * samples * EX, samples * EX);
    }
    cli_write_grid(out, grid, n * cols, C, H, W, cols);
    double per_img = hidden / (double)n, hidden_px = (double)((H - rows) * W * C);
    printf("hidden part (rows %zu..%zu): %.2f nats/image, %.4f bits/dim over %zu test images -> %s\n", rows,
           H - 1, per_img, per_img / log(2.0) / hidden_px, n, out);
    free(grid), free(comp), free(clab);
    loom_images_free(&set);
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}

int cmd_reconstruct(int argc, char **argv) {
    size_t n = 8, threads = (size_t)cli_default_threads();
    const char *out = NULL, *data = NULL, *split = "test";
    bool gray = false;
    cli_arg args[] = {
        {"n", ARG_SIZE, &n, 1, 10000, "images (default 8)", false},
        {"data", ARG_STR, &data, 0, 0, "data (default: the run's)", false},
        {"gray", ARG_FLAG, &gray, 0, 0, "convert RGB data to gray (BT.601; automatic for runs trained with --gray)", false},
        {"split", ARG_STR, &split, 0, 0, "test (default) or valid", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"out", ARG_STR, &out, 0, 0, "PNG file: rows of input | model input | reconstruction", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("reconstruct", "RUN_DIR|CHECKPOINT [--n N] --out FILE.png", argc, argv, args,
              sizeof args / sizeof args[0], pos, 1, &npos);
    if (npos != 1) cli_die(2, "reconstruct needs a run directory or checkpoint (see 'loom reconstruct --help')");
    if (!out) cli_die(2, "reconstruct needs --out FILE.png (see 'loom reconstruct --help')");
    loom_train_opts o;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, NULL);
    if (!(loom_model_caps(m) & LOOM_CAP_RECONSTRUCT))
        cli_die(2, "reconstruct: model %s is not an autoencoder (nothing to reconstruct)", m->ops->name);
    const loom_config *c = &m->cfg;
    const size_t C = loom_channels(c), HW = C * c->height * c->width; /* bytes per image (C, H, W) */
    loom_images set;
    cli_load_split(&set, data ? data : o.data, split, &o, c, gray);
    if (n > set.n) n = set.n;
    uint8_t *rec = malloc(2 * n * HW), *grid = malloc(3 * n * HW);
    if (!rec || !grid) cli_die(1, "out of memory");
    loom_error err;
    loom_status st = loom_model_reconstruct(m, rec, set.pixels, NULL, n, &err);
    if (st) cli_die_err(st, &err);
    for (size_t k = 0; k < n; k++) {
        memcpy(grid + 3 * k * HW, set.pixels + k * HW, HW);
        memcpy(grid + (3 * k + 1) * HW, rec + 2 * k * HW, 2 * HW);
    }
    cli_write_grid(out, grid, 3 * n, C, c->height, c->width, 3);
    fprintf(stderr, "loom: %zu %s images: input | model input | reconstruction -> %s\n", n, split, out);
    free(rec), free(grid);
    loom_train_opts_free(&o);
    loom_images_free(&set);
    loom_model_free(m);
    return 0;
}

int cmd_interpolate(int argc, char **argv) {
    size_t steps = 8, threads = (size_t)cli_default_threads();
    const char *out = NULL, *data = NULL, *split = "test";
    bool gray = false;
    cli_arg args[] = {
        {"steps", ARG_SIZE, &steps, 2, 1000, "decoded codes from A to B, ends included (default 8)", false},
        {"data", ARG_STR, &data, 0, 0, "data (default: the run's)", false},
        {"gray", ARG_FLAG, &gray, 0, 0, "convert RGB data to gray (BT.601; automatic for runs trained with --gray)", false},
        {"split", ARG_STR, &split, 0, 0, "test (default) or valid", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"out", ARG_STR, &out, 0, 0, "PNG file: A | decoded codes | B", false},
    };
    const char *pos[3];
    int npos;
    cli_parse("interpolate", "RUN_DIR|CHECKPOINT A B [--steps K] --out FILE.png", argc, argv, args,
              sizeof args / sizeof args[0], pos, 3, &npos);
    if (npos != 3)
        cli_die(2, "interpolate needs a run and two image indices A B (see 'loom interpolate --help')");
    if (!out) cli_die(2, "interpolate needs --out FILE.png (see 'loom interpolate --help')");
    size_t idx[2];
    for (int k = 0; k < 2; k++) {
        const char *v = pos[1 + k];
        if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 9)
            cli_die(2, "interpolate: image index '%s' is not a non-negative integer", v);
        idx[k] = (size_t)strtoul(v, NULL, 10);
    }
    loom_train_opts o;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, NULL);
    const size_t Z = loom_model_code_dim(m);
    if (!Z) cli_die(2, "interpolate: model %s has no codes to interpolate", m->ops->name);
    const loom_config *c = &m->cfg;
    const size_t C = loom_channels(c), HW = C * c->height * c->width; /* bytes per image (C, H, W) */
    loom_images set;
    cli_load_split(&set, data ? data : o.data, split, &o, c, gray);
    for (int k = 0; k < 2; k++)
        if (idx[k] >= set.n) cli_die(2, "interpolate: image %zu is past the %zu %s images", idx[k], set.n, split);
    uint8_t *pair = malloc(2 * HW), *grid = malloc((steps + 2) * HW), *dec = malloc(steps * HW);
    float *ends = malloc(2 * Z * sizeof *ends), *codes = malloc(steps * Z * sizeof *codes);
    if (!pair || !grid || !dec || !ends || !codes) cli_die(1, "out of memory");
    memcpy(pair, set.pixels + idx[0] * HW, HW);
    memcpy(pair + HW, set.pixels + idx[1] * HW, HW);
    loom_error err;
    loom_status st = loom_model_encode(m, ends, pair, 2, &err);
    for (size_t s = 0; s < steps && !st; s++) {
        const float a = (float)s / (float)(steps - 1);
        for (size_t j = 0; j < Z; j++) codes[s * Z + j] = (1.0f - a) * ends[j] + a * ends[Z + j];
    }
    if (!st) st = loom_model_decode(m, dec, codes, steps, &err);
    if (st) cli_die_err(st, &err);
    memcpy(grid, pair, HW);
    memcpy(grid + HW, dec, steps * HW);
    memcpy(grid + (steps + 1) * HW, pair + HW, HW);
    cli_write_grid(out, grid, steps + 2, C, c->height, c->width, steps + 2);
    fprintf(stderr, "loom: %s images %zu and %zu, %zu codes between -> %s\n", split, idx[0], idx[1], steps, out);
    free(pair), free(grid), free(dec), free(ends), free(codes);
    loom_train_opts_free(&o);
    loom_images_free(&set);
    loom_model_free(m);
    return 0;
}
