#include "cli.h"

#include "nn/seq.h"
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 256 ? 256 : (int)n);
}

double cli_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

size_t cli_peak_rss_mb(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (size_t)u.ru_maxrss / 1024; /* Linux: kilobytes */
}

const char *cli_checkpoint_path(const char *p) {
    static char buf[4096];
    struct stat sb;
    if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if ((size_t)snprintf(buf, sizeof buf, "%s/checkpoint.safetensors", p) >= sizeof buf)
            cli_die(2, "%s: path too long", p);
        return buf;
    }
    return p;
}

loom_model *cli_load_model(const char *run_or_ckpt, int threads, loom_train_opts *o,
                           loom_train_state *st) {
    loom_model *m;
    loom_error err;
    loom_status s = loom_checkpoint_load(cli_checkpoint_path(run_or_ckpt), threads, &m, NULL,
                                         NULL, st, o, &err);
    if (s) cli_die_err(s, &err);
    return m;
}

void cli_data_prepare(loom_images *im, const char *data, bool gray, char *note, size_t len) {
    loom_error err;
    loom_status st = loom_images_prepare(im, data, gray, note, len, &err);
    if (st) cli_die_err(st, &err);
}

void cli_check_data(const loom_images *im, const char *data, const loom_config *cfg) {
    const size_t c = im->c ? im->c : 1, want = loom_channels(cfg);
    if (c != want)
        cli_die(2, "%s: images have %zu channel%s (%s) but the model takes %zu (%s)%s", data, c,
                c == 1 ? "" : "s", c == 1 ? "gray" : "RGB", want, want == 1 ? "gray" : "RGB",
                want == 1 ? "; --gray converts them" : "");
}

void cli_load_split(loom_images *out, const char *data, const char *split,
                    const loom_train_opts *o, const loom_config *cfg, bool gray) {
    loom_error err;
    loom_train_opts view;
    loom_status s;
    if (strcmp(split, "test") == 0) {
        s = loom_images_load(out, data, "test", &err);
        if (s) cli_die_err(s, &err);
    } else if (strcmp(split, "valid") == 0) {
        loom_images all;
        s = loom_images_load(&all, data, "train", &err);
        if (s) cli_die_err(s, &err);
        view = *o;
        if (view.valid == LOOM_VALID_AUTO) view.valid = loom_valid_default(all.n);
        o = &view;
        if (o->valid == 0 || o->valid >= all.n)
            cli_die(2, "%s: the run has no validation split (valid = %zu of %zu images)", data,
                    o->valid, all.n);
        /* the trainer's split: the same images the run validated on */
        size_t *tr, *va, ntr, nva;
        s = loom_train_split(&tr, &ntr, &va, &nva, &all, o, &err);
        if (!s) s = loom_images_gather(out, &all, va, nva, &err);
        if (!s) out->class_names = all.class_names, all.class_names = NULL;
        free(tr), free(va);
        loom_images_free(&all);
        if (s) cli_die_err(s, &err);
    } else {
        cli_die(2, "--split must be 'test' or 'valid', not '%s'", split);
    }
    char note[1024];
    cli_data_prepare(out, data, gray || (o && o->gray), note, sizeof note);
    /* a set whose classes are not the run's would silently renumber the labels */
    if ((s = loom_classes_match(o, out, data, &err))) cli_die_err(s, &err);
    if (out->h != cfg->height || out->w != cfg->width)
        cli_die(2, "%s: images are %zux%zu but the model was trained on %zux%zu", data, out->h,
                out->w, cfg->height, cfg->width);
    cli_check_data(out, data, cfg);
    for (char *line = note; *line;) { /* one "loom: " line per note */
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        fprintf(stderr, "loom: %s\n", line);
        line = nl ? nl + 1 : line + strlen(line);
    }
}

void cli_write_grid(const char *path, const uint8_t *imgs, size_t n, size_t c, size_t h, size_t w,
                    size_t cols) {
    uint8_t *grid;
    size_t gh, gw;
    loom_error err;
    loom_status st = loom_grid_channels(&grid, &gh, &gw, imgs, n, c, h, w, cols, 1, 128, &err);
    if (!st) st = c == 3 ? loom_png_write_rgb(path, grid, gh, gw, &err)
                         : loom_png_write_gray(path, grid, gh, gw, &err);
    if (st) cli_die_err(st, &err);
    free(grid);
}

void cli_model_flags(loom_config *cfg, const char *cell, size_t zdim, bool layers_given) {
    if (strcmp(cfg->model, "renet") == 0 || strcmp(cfg->model, "reseg") == 0) { /* --cell: cli_renet_config */
        if (zdim) cli_die(2, "--zdim: only --model grupixel, draw or rae takes it (model %s)", cfg->model);
        return;
    }
    const bool gp = strcmp(cfg->model, "grupixel") == 0;
    /* draw and rae take --zdim too: cli_draw_config */
    const bool latent = strcmp(cfg->model, "draw") == 0 || strcmp(cfg->model, "rae") == 0;
    if (!gp && (cell || (zdim && !latent)))
        cli_die(2, "--%s: only --model grupixel%s takes it (model %s)", cell ? "cell" : "zdim",
                cell ? "" : ", draw or rae", cfg->model);
    if (!gp) return;
    loom_cell k;
    if (!cell) cell = "gru";
    if (loom_cell_parse(cell, &k) != 0) cli_die(2, "--cell %s: unknown cell (known: gru, lstm, rnn)", cell);
    snprintf(cfg->cell, sizeof cfg->cell, "%s", cell);
    cfg->zdim = zdim ? zdim : 32;
    if (!layers_given) cfg->layers = 1;
}

void cli_draw_config(loom_config *cfg, const cli_draw_flags *f) {
    const bool draw = strcmp(cfg->model, "draw") == 0, rae = strcmp(cfg->model, "rae") == 0;
    const char *drawonly = f->steps_draw ? "steps-draw" : f->read_n ? "read-n" : f->write_n ? "write-n" :
                           f->attention ? "attention" : NULL;
    if (!draw && drawonly) cli_die(2, "--%s: only --model draw takes it (model %s)", drawonly, cfg->model);
    if (!rae && f->variational) cli_die(2, "--variational: only --model rae takes it (model %s)", cfg->model);
    if (!draw && !rae) return; /* --zdim of other models: cli_model_flags */
    if (f->layers_seen) cli_die(2, "--layers: model %s has one decoder LSTM", cfg->model);
    if (!f->hidden_seen) cfg->hidden = 256;
    cfg->layers = 1;
    if (rae) {
        cfg->zdim = f->zdim ? f->zdim : 32;
        cfg->variational = f->variational;
        return;
    }
    cfg->zdim = f->zdim ? f->zdim : 100;
    cfg->steps_draw = f->steps_draw ? f->steps_draw : 64;
    cfg->read_n = f->read_n ? f->read_n : 2;
    cfg->write_n = f->write_n ? f->write_n : 5;
    if (!f->attention || strcmp(f->attention, "on") == 0) cfg->attention = 1;
    else if (strcmp(f->attention, "off") == 0) cfg->attention = 0;
    else cli_die(2, "--attention must be 'on' or 'off', not '%s'", f->attention);
}
