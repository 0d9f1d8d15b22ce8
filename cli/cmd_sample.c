/* loom sample, loom complete */
#include "cli.h"
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* frames (n, T, C, h, w) -> an animated GIF of T grids (one frame per stage,
 * the last held 1 s), each laid out like the PNG grid (row_labels: as
 * cli_make_grid) and scaled by `scale` (0: cli_auto_scale) */
static void write_gif(const char *path, const uint8_t *frames, size_t n, size_t T, size_t C, size_t h,
                      size_t w, size_t cols, size_t scale, const char *const *row_labels) {
    loom_error err;
    const size_t EX = C * h * w;
    uint8_t *one = malloc(n * EX), *all = NULL, *grid = NULL;
    uint16_t *delays = malloc(T * sizeof *delays);
    size_t gh = 0, gw = 0;
    if (!one || !delays) cli_die(1, "out of memory");
    for (size_t t = 0; t < T; t++) {
        for (size_t b = 0; b < n; b++) memcpy(one + b * EX, frames + (b * T + t) * EX, EX);
        grid = cli_make_grid(one, n, C, h, w, cols, 128, row_labels, &gh, &gw);
        grid = cli_scale_grid(grid, C, &gh, &gw, scale ? scale : cli_auto_scale(gw));
        if (!all && !(all = malloc(T * C * gh * gw))) cli_die(1, "out of memory for a %zu-frame GIF", T);
        memcpy(all + t * C * gh * gw, grid, C * gh * gw);
        free(grid);
        delays[t] = t + 1 < T ? LOOM_GIF_DELAY : 100;
    }
    loom_status st = loom_gif_write(path, all, T, C, gh, gw, delays, &err);
    if (st) cli_die_err(st, &err);
    free(one), free(all), free(delays);
}

/* An autoregressive sample as it is drawn: frame r (1..H) holds the first r
 * rows of the final images, exactly what the sampler had after row r (the
 * raster order never revisits a pixel), the rest mid gray. frames (n, H, C, H, W). */
static uint8_t *raster_frames(const uint8_t *imgs, size_t n, size_t C, size_t H, size_t W) {
    const size_t EX = C * H * W;
    uint8_t *f = malloc(n * H * EX);
    if (!f) cli_die(1, "out of memory for %zu x %zu frames", n, H);
    memset(f, 128, n * H * EX);
    for (size_t b = 0; b < n; b++)
        for (size_t r = 0; r < H; r++)
            for (size_t c = 0; c < C; c++)
                memcpy(f + (b * H + r) * EX + c * H * W, imgs + b * EX + c * H * W, (r + 1) * W);
    return f;
}

int cmd_sample(int argc, char **argv) {
    size_t n = 16, threads = (size_t)cli_default_threads(), cols = 0, scale = 0;
    double temperature = 1.0;
    uint64_t seed = 1;
    const char *out = NULL, *label = NULL, *steps_png = NULL, *gif = NULL, *gemm = NULL, *precision = NULL;
    bool json = false;
    cli_arg args[] = {
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
        {"steps-png", ARG_STR, &steps_png, 0, 0, "staged models (draw): also write every stage, one row per image", false},
        {"gif", ARG_STR, &gif, 0, 0, "also an animated GIF of the grid being drawn: a frame per stage (draw) or per row (autoregressive models)", false},
        {"n", ARG_SIZE, &n, 1, 100000, "images, exactly (default 16; --label all: a multiple of the classes)", false},
        {"scale", ARG_SIZE, &scale, 1, 64, "enlarge the grid K times, nearest neighbour (default: the least K making it 512 px wide)", false},
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
    loom_train_state ts;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, &ts);
    cli_gemm(m, gemm, NULL, precision);
    const loom_config *c = &m->cfg;
    const size_t nframes = loom_model_nframes(m);
    if (steps_png && !nframes) cli_die(2, "--steps-png: model %s does not draw in stages", m->ops->name);
    /* autoregressive models animate row by row; a model that does neither has no --gif */
    const bool raster = !nframes && (loom_model_caps(m) & LOOM_CAP_CONDITIONALS);
    if (gif && !nframes && !raster)
        cli_die(2, "--gif: model %s neither draws in stages nor pixel by pixel", m->ops->name);
    const bool n_given = cli_find(args, sizeof args / sizeof args[0], "n")->seen;
    const bool cols_given = cli_find(args, sizeof args / sizeof args[0], "cols")->seen;
    int32_t *labels = NULL;
    if (label) {
        if (!c->nclasses) cli_die(2, "--label: this model is not class-conditional");
        if (strcmp(label, "all") == 0) {
            const size_t K = (size_t)c->nclasses;
            /* one row per class: --n exactly, so a multiple of the classes */
            if (n_given && n > K && n % K != 0)
                cli_die(2, "--label all: --n %zu is not a multiple of the model's %zu classes (one row per class; "
                        "e.g. --n %zu)", n, K, K * (n / K ? n / K : 1));
            size_t per = n < K ? 1 : n / K;
            if (n_given && n < K)
                fprintf(stderr, "loom: --label all: one image per class, %zu images (--n %zu is fewer than the classes)\n",
                        K, n);
            n = per * K;
            if (!cols_given) cols = per;
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
    if (steps_png || (gif && nframes)) {
        if (!loom_mul_ok(n * EX, nframes, &(size_t){0}) || !(frames = malloc(n * nframes * EX)))
            cli_die(1, "out of memory for %zu x %zu frames", n, nframes);
        st = loom_model_sample_frames(m, imgs, frames, labels, n, (float)temperature, seed, &err);
    } else {
        st = loom_model_sample(m, imgs, labels, n, 0, (float)temperature, seed, &err);
    }
    if (st) cli_die_err(st, &err);
    double dt = cli_now() - t0;
    const size_t gcols = cols ? cols : (size_t)ceil(sqrt((double)n));
    /* --label all: when every row of the grid holds one class, its name goes
     * beside the class's first row (the run's class names, else its number) */
    const char **row_labels = NULL;
    char (*numbers)[16] = NULL;
    if (label && strcmp(label, "all") == 0 && (n / (size_t)c->nclasses) % gcols == 0) {
        const size_t per = n / (size_t)c->nclasses, nrows = (n + gcols - 1) / gcols;
        row_labels = calloc(nrows, sizeof *row_labels);
        numbers = calloc((size_t)c->nclasses, sizeof *numbers);
        if (!row_labels || !numbers) cli_die(1, "out of memory");
        for (int k = 0; k < c->nclasses; k++) {
            snprintf(numbers[k], sizeof numbers[k], "%d", k);
            row_labels[(size_t)k * per / gcols] = (size_t)k < o.nclass_names ? o.class_names[k] : numbers[k];
        }
    }
    cli_write_grid_labelled(out, imgs, n, C, c->height, c->width, gcols, scale, 128, row_labels);
    if (gif && raster) {
        uint8_t *rf = raster_frames(imgs, n, C, c->height, c->width);
        write_gif(gif, rf, n, c->height, C, c->height, c->width, gcols, scale, row_labels);
        free(rf);
        fprintf(stderr, "loom: %zu rows of %zu images, a frame per row -> %s\n", c->height, n, gif);
    } else if (gif) {
        write_gif(gif, frames, n, nframes, C, c->height, c->width, gcols, scale, row_labels);
        fprintf(stderr, "loom: %zu stages of %zu images -> %s\n", nframes, n, gif);
    }
    if (label && strcmp(label, "all") == 0 && o.class_names) { /* which row is which class */
        fprintf(stderr, "loom: rows:");
        for (int k = 0; k < c->nclasses; k++)
            fprintf(stderr, " %d=%s", k, (size_t)k < o.nclass_names ? o.class_names[k] : "?");
        fprintf(stderr, "\n");
    }
    if (frames && steps_png) {
        cli_write_grid_scaled(steps_png, frames, n * nframes, C, c->height, c->width, nframes, scale, 128);
        fprintf(stderr, "loom: %zu stages of %zu images -> %s\n", nframes, n, steps_png);
    }
    free(frames);
    fprintf(stderr, "loom: %zu samples in %.2f s (%.2f ms/image) -> %s\n", n, dt, 1e3 * dt / (double)n, out);
    if (json) {
        cli_json j;
        cli_json_begin(&j, c->model, ts.step, cli_checkpoint_path(pos[0]), "samples");
        cli_json_str(&j, "out", out);
        cli_json_int(&j, "n", (long long)n);
        cli_json_int(&j, "seed", (long long)seed);
        cli_json_num(&j, "temperature", temperature);
        cli_json_str(&j, "gif", gif);
        cli_json_str(&j, "steps_png", steps_png);
        cli_json_num(&j, "ms_per_image", 1e3 * dt / (double)n);
        cli_json_end(&j);
    }
    free(imgs), free(labels), free(row_labels), free(numbers);
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}

int cmd_complete(int argc, char **argv) {
    size_t n = 8, rows = 0, samples = 3, threads = (size_t)cli_default_threads(), scale = 0;
    double temperature = 1.0;
    uint64_t seed = 1;
    const char *out = NULL, *data = NULL;
    bool gray = false, json = false;
    cli_arg args[] = {
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
        {"rows", ARG_SIZE, &rows, 0, 4096, "keep the top K rows (default: half)", false},
        {"n", ARG_SIZE, &n, 1, 10000, "test images (default 8)", false},
        {"samples", ARG_SIZE, &samples, 1, 100, "completions per image (default 3)", false},
        {"temperature", ARG_DOUBLE, &temperature, 1e-6, 100, "softmax temperature (default 1)", false},
        {"seed", ARG_U64, &seed, 0, 0, "seed (default 1)", false},
        {"data", ARG_STR, &data, 0, 0, "data (default: the run's test set)", false},
        {"gray", ARG_FLAG, &gray, 0, 0, "convert RGB data to gray (BT.601; automatic for runs trained with --gray)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"scale", ARG_SIZE, &scale, 1, 64, "enlarge the grid K times, nearest neighbour (default: the least K making it 512 px wide)", false},
        {"out", ARG_STR, &out, 0, 0, "PNG file: rows of original | masked | completions", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("complete", "RUN_DIR|CHECKPOINT [--rows K] [--n N] --out FILE.png", argc, argv, args,
              sizeof args / sizeof args[0], pos, 1, &npos);
    if (npos != 1) cli_die(2, "complete needs a run directory or checkpoint (see 'loom complete --help')");
    if (!out) cli_die(2, "complete needs --out FILE.png (see 'loom complete --help')");
    loom_train_opts o;
    loom_train_state ts;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, &ts);
    FILE *say = json ? stderr : stdout; /* with --json stdout has the one JSON line */
    const loom_config *c = &m->cfg;
    /* images (C, H, W), EX bytes; keep = rows * W raster positions, every channel of them */
    const size_t H = c->height, W = c->width, HW = H * W, C = loom_channels(c), EX = C * HW;
    if (c->multiscale)
        cli_die(2, "complete: a multi-scale model has no raster-order conditionals to complete with "
                "(loom inpaint fills any mask)");
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
            fprintf(say, "test images: %zu, seeded and stratified by class:", n);
            for (int k = 0; k < set.nclasses; k++) {
                size_t cnt = 0;
                for (size_t i = 0; i < n; i++) cnt += picked.labels[i] == k;
                fprintf(say, " %d=%zu", k, cnt);
            }
            fprintf(say, "\n");
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
    /* a conditional model's rows are each an image of a class: named beside it */
    const char **row_labels = NULL;
    char (*numbers)[16] = NULL;
    if (lab) {
        row_labels = calloc(n, sizeof *row_labels);
        numbers = calloc(n, sizeof *numbers);
        if (!row_labels || !numbers) cli_die(1, "out of memory");
        for (size_t k = 0; k < n; k++) {
            snprintf(numbers[k], sizeof numbers[k], "%d", (int)lab[k]);
            row_labels[k] = (size_t)lab[k] < o.nclass_names ? o.class_names[lab[k]] : numbers[k];
        }
    }
    /* the grid's padding white, so that it is never taken for the masked (mid gray) part */
    cli_write_grid_labelled(out, grid, n * cols, C, H, W, cols, scale, 255, row_labels);
    free(row_labels), free(numbers);
    double per_img = hidden / (double)n, hidden_px = (double)((H - rows) * W * C);
    fprintf(say, "hidden part (rows %zu..%zu): %.2f nats/image, %.4f bits/dim over %zu test images -> %s\n", rows,
            H - 1, per_img, per_img / log(2.0) / hidden_px, n, out);
    if (json) {
        cli_json j; /* the hidden part's NLL under the model's exact conditionals */
        cli_json_begin(&j, c->model, ts.step, cli_checkpoint_path(pos[0]), "exact");
        cli_json_num(&j, "hidden_bits_per_dim", per_img / log(2.0) / hidden_px);
        cli_json_num(&j, "hidden_nats_per_image", per_img);
        cli_json_int(&j, "images", (long long)n);
        cli_json_int(&j, "rows", (long long)rows);
        cli_json_int(&j, "samples", (long long)samples);
        cli_json_str(&j, "out", out);
        cli_json_end(&j);
    }
    free(grid), free(comp), free(clab);
    loom_images_free(&set);
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}

int cmd_reconstruct(int argc, char **argv) {
    size_t n = 8, threads = (size_t)cli_default_threads(), scale = 0;
    const char *out = NULL, *data = NULL, *split = "test";
    bool gray = false, json = false;
    cli_arg args[] = {
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
        {"n", ARG_SIZE, &n, 1, 10000, "images (default 8)", false},
        {"data", ARG_STR, &data, 0, 0, "data (default: the run's)", false},
        {"gray", ARG_FLAG, &gray, 0, 0, "convert RGB data to gray (BT.601; automatic for runs trained with --gray)", false},
        {"split", ARG_STR, &split, 0, 0, "test (default) or valid", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"scale", ARG_SIZE, &scale, 1, 64, "enlarge the grid K times, nearest neighbour (default: the least K making it 512 px wide)", false},
        {"out", ARG_STR, &out, 0, 0, "PNG file: rows of input | model input | reconstruction", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("reconstruct", "RUN_DIR|CHECKPOINT [--n N] --out FILE.png", argc, argv, args,
              sizeof args / sizeof args[0], pos, 1, &npos);
    if (npos != 1) cli_die(2, "reconstruct needs a run directory or checkpoint (see 'loom reconstruct --help')");
    if (!out) cli_die(2, "reconstruct needs --out FILE.png (see 'loom reconstruct --help')");
    loom_train_opts o;
    loom_train_state ts;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, &ts);
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
    cli_write_grid_scaled(out, grid, 3 * n, C, c->height, c->width, 3, scale, 128);
    fprintf(stderr, "loom: %zu %s images: input | model input | reconstruction -> %s\n", n, split, out);
    if (json) {
        cli_json j;
        cli_json_begin(&j, c->model, ts.step, cli_checkpoint_path(pos[0]), "reconstruction");
        cli_json_str(&j, "out", out);
        cli_json_int(&j, "images", (long long)n);
        cli_json_str(&j, "split", split);
        cli_json_end(&j);
    }
    free(rec), free(grid);
    loom_train_opts_free(&o);
    loom_images_free(&set);
    loom_model_free(m);
    return 0;
}

int cmd_interpolate(int argc, char **argv) {
    size_t steps = 8, threads = (size_t)cli_default_threads(), scale = 0;
    const char *out = NULL, *data = NULL, *split = "test", *gif = NULL;
    bool gray = false, json = false;
    cli_arg args[] = {
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
        {"gif", ARG_STR, &gif, 0, 0, "also an animated GIF: A, the decoded codes, B, and back", false},
        {"steps", ARG_SIZE, &steps, 2, 1000, "decoded codes from A to B, ends included (default 8)", false},
        {"data", ARG_STR, &data, 0, 0, "data (default: the run's)", false},
        {"gray", ARG_FLAG, &gray, 0, 0, "convert RGB data to gray (BT.601; automatic for runs trained with --gray)", false},
        {"split", ARG_STR, &split, 0, 0, "test (default) or valid", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"scale", ARG_SIZE, &scale, 1, 64, "enlarge the grid K times, nearest neighbour (default: the least K making it 512 px wide)", false},
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
    loom_train_state ts;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, &ts);
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
    cli_write_grid_scaled(out, grid, steps + 2, C, c->height, c->width, steps + 2, scale, 128);
    fprintf(stderr, "loom: %s images %zu and %zu, %zu codes between -> %s\n", split, idx[0], idx[1], steps, out);
    if (gif) { /* A, the codes, B, then back again: a loop without a jump */
        const size_t nf = 2 * (steps + 2) - 2;
        uint8_t *frames = malloc(nf * HW);
        if (!frames) cli_die(1, "out of memory for a %zu-frame GIF", nf);
        for (size_t f = 0; f < nf; f++) {
            const size_t k = f < steps + 2 ? f : 2 * (steps + 1) - f;
            memcpy(frames + f * HW, grid + k * HW, HW);
        }
        write_gif(gif, frames, 1, nf, C, c->height, c->width, 1, scale, NULL);
        free(frames);
        fprintf(stderr, "loom: %zu frames -> %s\n", nf, gif);
    }
    if (json) {
        cli_json j;
        cli_json_begin(&j, c->model, ts.step, cli_checkpoint_path(pos[0]), "codes");
        cli_json_str(&j, "out", out);
        cli_json_str(&j, "gif", gif);
        cli_json_int(&j, "a", (long long)idx[0]);
        cli_json_int(&j, "b", (long long)idx[1]);
        cli_json_int(&j, "steps", (long long)steps);
        cli_json_str(&j, "split", split);
        cli_json_end(&j);
    }
    free(pair), free(grid), free(dec), free(ends), free(codes);
    loom_train_opts_free(&o);
    loom_images_free(&set);
    loom_model_free(m);
    return 0;
}
