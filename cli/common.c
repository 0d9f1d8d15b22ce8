#include "cli.h"

#include "io/font.h"
#include "io/jpeg.h"
#include "nn/seq.h"
#include "train/trainer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 256 ? 256 : (int)n);
}

static void json_put(cli_json *j, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(j->buf ? j->buf + j->len : NULL, j->buf ? j->cap - j->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) cli_die(1, "--json: cannot format the output");
        if (j->buf && j->len + (size_t)n < j->cap) {
            j->len += (size_t)n;
            return;
        }
        size_t cap = j->cap ? j->cap : 256;
        while (cap <= j->len + (size_t)n) cap *= 2;
        char *b = realloc(j->buf, cap);
        if (!b) cli_die(1, "out of memory");
        j->buf = b, j->cap = cap;
    }
}

/* a JSON string: quotes, backslashes and control characters escaped */
static void json_string(cli_json *j, const char *v) {
    json_put(j, "\"");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') json_put(j, "\\%c", *p);
        else if (*p < 0x20) json_put(j, "\\u%04x", *p);
        else json_put(j, "%c", *p);
    }
    json_put(j, "\"");
}

static void json_key(cli_json *j, const char *key) {
    json_put(j, "%s", j->len > 1 ? ", " : "");
    json_string(j, key);
    json_put(j, ": ");
}

void cli_json_begin(cli_json *j, const char *model, long step, const char *checkpoint, const char *kind) {
    memset(j, 0, sizeof *j);
    json_put(j, "{");
    cli_json_str(j, "model", model);
    cli_json_int(j, "step", step);
    cli_json_str(j, "checkpoint", checkpoint);
    cli_json_str(j, "kind", kind);
}

void cli_json_str(cli_json *j, const char *key, const char *v) {
    json_key(j, key);
    if (v) json_string(j, v);
    else json_put(j, "null");
}

void cli_json_num(cli_json *j, const char *key, double v) {
    json_key(j, key);
    if (isfinite(v)) json_put(j, "%.10g", v);
    else json_put(j, "null");
}

void cli_json_fixed(cli_json *j, const char *key, double v, int digits) {
    json_key(j, key);
    if (isfinite(v)) json_put(j, "%.*f", digits, v);
    else json_put(j, "null");
}

void cli_json_int(cli_json *j, const char *key, long long v) {
    json_key(j, key);
    json_put(j, "%lld", v);
}

void cli_json_raw(cli_json *j, const char *key, const char *raw) {
    json_key(j, key);
    json_put(j, "%s", raw);
}

void cli_json_end(cli_json *j) {
    json_put(j, "}");
    /* one line, whatever the raw parts held */
    for (size_t i = 0; i < j->len; i++)
        if (j->buf[i] == '\n' || j->buf[i] == '\r' || j->buf[i] == '\t') j->buf[i] = ' ';
    printf("%s\n", j->buf);
    fflush(stdout);
    free(j->buf);
    memset(j, 0, sizeof *j);
}

const char *cli_nll_kind(const loom_model *m, size_t iw) {
    const char *k = m->ops->nll_kind ? m->ops->nll_kind(&m->cfg) : NULL;
    if (!m->ops->shard) return "none"; /* no likelihood: an adversarial model */
    if (iw) return "iw";
    if (!k) return "exact";
    if (strstr(k, "ELBO")) return "elbo";
    if (strstr(k, "reconstruction")) return "reconstruction";
    if (strstr(k, "fixed z")) return "fixed-z";
    return "bound";
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
    if (s) { /* a run of several models (gran: a generator and its discriminator): the first */
        loom_run_model ms[LOOM_MAX_MODELS];
        size_t n = 0;
        loom_error e2;
        if (loom_run_load(cli_checkpoint_path(run_or_ckpt), threads, false, ms, &n, st, o, &e2) || n < 2)
            cli_die_err(s, &err);
        m = ms[0].m;
        ms[0].m = NULL;
        loom_run_models_free(ms, n);
    }
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
        s = loom_images_load_resized(out, data, "test", o->resize_h, o->resize_w, &err);
        if (s) cli_die_err(s, &err);
    } else if (strcmp(split, "valid") == 0) {
        loom_images all;
        s = loom_images_load_resized(&all, data, "train", o->resize_h, o->resize_w, &err);
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

uint8_t *cli_scale_grid(uint8_t *grid, size_t c, size_t *h, size_t *w, size_t k) {
    if (k <= 1) return grid;
    const size_t H = *h, W = *w;
    size_t bytes;
    if (!loom_mul_ok(c * H * k, W * k, &bytes) || bytes > ((size_t)1 << 31))
        cli_die(2, "--scale %zu: a %zux%zu grid would be %zux%zu pixels, too large", k, W, H, W * k, H * k);
    uint8_t *big = malloc(bytes);
    if (!big) cli_die(1, "out of memory for a %zux%zu grid", W * k, H * k);
    for (size_t ch = 0; ch < c; ch++)
        for (size_t y = 0; y < H * k; y++)
            for (size_t x = 0; x < W * k; x++)
                big[(ch * H * k + y) * W * k + x] = grid[(ch * H + y / k) * W + x / k];
    free(grid);
    *h = H * k, *w = W * k;
    return big;
}

size_t cli_auto_scale(size_t w) {
    return w >= CLI_GRID_MIN_WIDTH ? 1 : (CLI_GRID_MIN_WIDTH + w - 1) / w;
}

uint8_t *cli_make_grid(const uint8_t *imgs, size_t n, size_t c, size_t h, size_t w, size_t cols, uint8_t pad,
                       const char *const *row_labels, size_t *gh, size_t *gw) {
    uint8_t *grid;
    loom_error err;
    loom_status st = loom_grid_channels(&grid, gh, gw, imgs, n, c, h, w, cols, 1, pad, &err);
    if (!st && row_labels)
        st = loom_grid_label_rows(&grid, c, gh, gw, h, 1, row_labels, (n + cols - 1) / cols, pad, &err);
    if (st) cli_die_err(st, &err);
    return grid;
}

void cli_write_grid_labelled(const char *path, const uint8_t *imgs, size_t n, size_t c, size_t h, size_t w,
                             size_t cols, size_t scale, uint8_t pad, const char *const *row_labels) {
    size_t gh, gw;
    loom_error err;
    loom_status st;
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/') && (strcasecmp(dot, ".gif") == 0 || strcasecmp(dot, ".bmp") == 0 ||
                                     strcasecmp(dot, ".webp") == 0 || strcasecmp(dot, ".tif") == 0))
        cli_die(2, "%s: loom writes grids as PNG (.png) or JPEG (.jpg)%s", path,
                strcasecmp(dot, ".gif") == 0 ? "; animations with --gif FILE.gif" : "");
    uint8_t *grid = cli_make_grid(imgs, n, c, h, w, cols, pad, row_labels, &gh, &gw);
    grid = cli_scale_grid(grid, c, &gh, &gw, scale ? scale : cli_auto_scale(gw));
    if (loom_is_jpeg_name(path)) st = loom_jpeg_write(path, grid, c, gh, gw, 95, &err);
    else st = c == 3 ? loom_png_write_rgb(path, grid, gh, gw, &err) : loom_png_write_gray(path, grid, gh, gw, &err);
    if (st) cli_die_err(st, &err);
    free(grid);
}

void cli_write_grid_scaled(const char *path, const uint8_t *imgs, size_t n, size_t c, size_t h, size_t w,
                           size_t cols, size_t scale, uint8_t pad) {
    cli_write_grid_labelled(path, imgs, n, c, h, w, cols, scale, pad, NULL);
}

void cli_write_grid(const char *path, const uint8_t *imgs, size_t n, size_t c, size_t h, size_t w,
                    size_t cols) {
    cli_write_grid_scaled(path, imgs, n, c, h, w, cols, 1, 128);
}

void cli_model_flags(loom_config *cfg, const char *cell, size_t zdim, bool layers_given) {
    if (strcmp(cfg->model, "renet") == 0 || strcmp(cfg->model, "reseg") == 0) { /* --cell: cli_renet_config */
        if (zdim) cli_die(2, "--zdim: only --model grupixel, draw or rae takes it (model %s)", cfg->model);
        return;
    }
    const bool gp = strcmp(cfg->model, "grupixel") == 0;
    /* draw and rae take --zdim too: cli_draw_config */
    const bool latent = strcmp(cfg->model, "draw") == 0 || strcmp(cfg->model, "rae") == 0 ||
                        strcmp(cfg->model, "gran") == 0;
    if (!gp && (cell || (zdim && !latent)))
        cli_die(2, "--%s: only --model grupixel%s takes it (model %s)", cell ? "cell" : "zdim",
                cell ? "" : ", draw or rae (and gran)", cfg->model);
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
