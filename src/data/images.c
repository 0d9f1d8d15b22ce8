/* Data spec resolution ("fashion-mnist", an IDX directory or a PNG folder),
 * and the lifetime helpers of loom_images. Layouts and conversion rules are
 * described in docs/data.md. */
#include "common.h"
#include "seqgen.h"
#include "scenes.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Where the Debian package dataset-fashion-mnist installs its files. */
#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

void loom_images_free(loom_images *im) {
    if (!im) return;
    free(im->pixels);
    free(im->labels);
    for (int c = 0; im->class_names && c < im->nclasses; c++) free(im->class_names[c]);
    free(im->class_names);
    loom_seqgen_unref(im->gen);
    free(im->gen_ids);
    memset(im, 0, sizeof *im);
}

size_t loom_images_example_bytes(const loom_images *im) {
    if (!im) return 0;
    size_t b = 0;
    if (!loom_mul_ok(im->t ? im->t : 1, im->c ? im->c : 1, &b) || !loom_mul_ok(b, im->h, &b) ||
        !loom_mul_ok(b, im->w, &b))
        return 0;
    return b;
}

loom_status loom_images_slice(loom_images *dst, const loom_images *src, size_t begin, size_t end,
                              loom_error *err) {
    if (!dst || !src) return loom_fail(err, LOOM_EINVAL, "loom_images_slice: NULL argument");
    if (begin >= end || end > src->n) {
        if (dst != src) memset(dst, 0, sizeof *dst);
        return loom_fail(err, LOOM_EINVAL,
                         "loom_images_slice: range [%zu, %zu) is not a non-empty part of [0, %zu)",
                         begin, end, src->n);
    }
    size_t n = end - begin, ex = loom_images_example_bytes(src), bytes;
    if (src->gen) { /* a generated set: the same generator, a range of its ids */
        size_t *ids = malloc(n * sizeof *ids);
        if (!ids) return loom_fail(err, LOOM_ENOMEM, "loom_images_slice: out of memory");
        for (size_t i = 0; i < n; i++) ids[i] = loom_images_gen_id(src, begin + i);
        loom_images s = *src;
        s.n = n, s.gen_ids = ids, s.labels = NULL, s.nclasses = 0, s.class_names = NULL;
        loom_seqgen_ref(s.gen);
        if (dst == src) loom_images_free(dst);
        *dst = s;
        return LOOM_OK;
    }
    loom_images s = {.n = n, .h = src->h, .w = src->w, .nclasses = src->nclasses,
                     .t = src->t, .c = src->c};
    if (ex == 0 || !loom_mul_ok(n, ex, &bytes)) {
        if (dst != src) memset(dst, 0, sizeof *dst);
        return loom_fail(err, LOOM_ENOMEM, "loom_images_slice: size overflows");
    }
    s.pixels = malloc(bytes);
    if (!s.pixels)
        return loom_fail(err, LOOM_ENOMEM, "loom_images_slice: out of memory for %zu bytes", bytes);
    memcpy(s.pixels, src->pixels + begin * ex, bytes);
    if (src->labels) {
        s.labels = malloc(n * sizeof *s.labels);
        if (!s.labels) {
            free(s.pixels);
            return loom_fail(err, LOOM_ENOMEM, "loom_images_slice: out of memory for %zu labels",
                             n);
        }
        memcpy(s.labels, src->labels + begin, n * sizeof *s.labels);
    } else {
        s.nclasses = 0;
    }
    /* dst may be src itself: release its old buffers only after copying. */
    if (dst == src) loom_images_free(dst);
    *dst = s;
    return LOOM_OK;
}

loom_status loom_images_to_gray(loom_images *im, loom_error *err) {
    if (!im) return loom_fail(err, LOOM_EINVAL, "loom_images_to_gray: NULL argument");
    size_t c = im->c ? im->c : 1;
    if (c == 1) return LOOM_OK;
    if (c != 3)
        return loom_fail(err, LOOM_EINVAL, "loom_images_to_gray: %zu channels (only 3, RGB, convert)",
                         c);
    size_t plane, planes;
    if (!loom_mul_ok(im->h, im->w, &plane) || !loom_mul_ok(im->n, im->t ? im->t : 1, &planes))
        return loom_fail(err, LOOM_ENOMEM, "loom_images_to_gray: size overflows");
    /* (n*t, 3, h, w) -> (n*t, h, w) in place: plane k's gray lands at or
     * before its R plane, which it has been read from by then. */
    for (size_t k = 0; k < planes; k++) {
        const uint8_t *r = im->pixels + 3 * k * plane, *g = r + plane, *b = g + plane;
        uint8_t *y = im->pixels + k * plane;
        for (size_t i = 0; i < plane; i++)
            y[i] = (uint8_t)((299u * r[i] + 587u * g[i] + 114u * b[i] + 500u) / 1000u);
    }
    im->c = 1;
    size_t bytes = planes * plane;
    uint8_t *shrunk = bytes ? realloc(im->pixels, bytes) : NULL;
    if (shrunk) im->pixels = shrunk; /* a failed shrink keeps the larger buffer */
    return LOOM_OK;
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *p = malloc(a + slash + b + 1);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a] = '/';
    memcpy(p + a + slash, name, b + 1);
    return p;
}

/* 1 when dir/name is a regular file (following symlinks), 0 when it is not
 * there, -1 when out of memory. */
static int regular_file(const char *dir, const char *name) {
    char *p = path_join(dir, name);
    if (!p) return -1;
    struct stat sb;
    int r = stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
    free(p);
    return r;
}

static int is_dir(const char *dir, const char *name) {
    char *p = path_join(dir, name);
    if (!p) return -1;
    struct stat sb;
    int r = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(p);
    return r;
}

/* The first of the standard MNIST names for (prefix, kind) present in dir,
 * as a malloc'ed path; NULL when none (*oom tells out of memory apart).
 * Names are PREFIX-KIND-idxD-ubyte, or PREFIX-KIND.idxD-ubyte, each with an
 * optional .gz; kind "images" with D = 3 or "labels" with D = 1. */
static char *find_idx(const char *dir, const char *prefix, const char *kind, int d, bool *oom) {
    static const char *const names[4] = {"%s-%s-idx%d-ubyte", "%s-%s-idx%d-ubyte.gz",
                                         "%s-%s.idx%d-ubyte", "%s-%s.idx%d-ubyte.gz"};
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, names[i], prefix, kind, d);
        int r = regular_file(dir, name);
        if (r < 0) {
            *oom = true;
            return NULL;
        }
        if (r) {
            char *p = path_join(dir, name);
            if (!p) *oom = true;
            return p;
        }
    }
    return NULL;
}

/* Whether dir holds PNG files, or sub-directories holding PNG files. Hidden
 * entries are skipped, as in the PNG folder reader. */
static bool has_png_content(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        size_t n = strlen(e->d_name);
        if (((n > 4 && strcasecmp(e->d_name + n - 4, ".png") == 0) || (n > 4 && strcasecmp(e->d_name + n - 4, ".jpg") == 0) ||
             (n > 5 && strcasecmp(e->d_name + n - 5, ".jpeg") == 0)) &&
            regular_file(dir, e->d_name) == 1) {
            found = true;
        } else if (depth > 0 && is_dir(dir, e->d_name) == 1) {
            char *sub = path_join(dir, e->d_name);
            found = sub && has_png_content(sub, depth - 1);
            free(sub);
        }
    }
    closedir(d);
    return found;
}

static loom_status load_idx_dir(loom_images *out, const char *dir, const char *split,
                                bool *found, loom_error *err) {
    const char *prefix = strcmp(split, "train") == 0 ? "train" : "t10k";
    const char *other = strcmp(split, "train") == 0 ? "t10k" : "train";
    bool oom = false;
    char *images = find_idx(dir, prefix, "images", 3, &oom);
    char *labels = images ? find_idx(dir, prefix, "labels", 1, &oom) : NULL;
    char *elsewhere = images ? NULL : find_idx(dir, other, "images", 3, &oom);
    loom_status st = LOOM_OK;
    *found = images || elsewhere;
    if (oom)
        st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
    else if (images)
        st = loom_idx_load(out, images, labels, err);
    else if (elsewhere)
        st = loom_fail(err, LOOM_EINVAL,
                       "%s: no %s set in this IDX directory (no %s-images-idx3-ubyte[.gz]; it has "
                       "%s)",
                       dir, split, prefix, elsewhere);
    free(images);
    free(labels);
    free(elsewhere);
    return st;
}

/* The class names of Fashion-MNIST, by label. */
static loom_status fashion_names(loom_images *im, loom_error *err) {
    static const char *const names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    if (!im->labels || im->nclasses > 10) return LOOM_OK;
    im->class_names = calloc(10, sizeof *im->class_names);
    for (int c = 0; im->class_names && c < 10; c++)
        if (!(im->class_names[c] = strdup(names[c]))) {
            for (int k = 0; k < c; k++) free(im->class_names[k]);
            free(im->class_names), im->class_names = NULL;
        }
    if (!im->class_names) {
        loom_images_free(im);
        return loom_fail(err, LOOM_ENOMEM, "fashion-mnist: out of memory");
    }
    im->nclasses = 10; /* the names cover every class, even one absent from a split */
    return LOOM_OK;
}

loom_status loom_images_load(loom_images *out, const char *spec, const char *split,
                             loom_error *err) {
    return loom_images_load_resized(out, spec, split, 0, 0, err);
}

/* every image of im (one size) centre-cropped and resampled to h x w */
static loom_status resize_all(loom_images *im, size_t h, size_t w, loom_error *err) {
    if (!h || (im->h == h && im->w == w)) return LOOM_OK;
    const size_t c = im->c ? im->c : 1, T = im->t ? im->t : 1, in = c * im->h * im->w, o = c * h * w;
    uint8_t *px = malloc(im->n * T * o);
    if (!px) return loom_fail(err, LOOM_ENOMEM, "resize: out of memory for %zu images of %zux%zu", im->n, w, h);
    for (size_t i = 0; i < im->n * T; i++) {
        loom_status st = loom_image_resize(px + i * o, h, w, im->pixels + i * in, c, im->h, im->w, err);
        if (st) {
            free(px);
            return st;
        }
    }
    free(im->pixels);
    im->pixels = px, im->h = h, im->w = w;
    return LOOM_OK;
}

loom_status loom_images_load_resized(loom_images *out, const char *spec, const char *split, size_t rh,
                                     size_t rw, loom_error *err) {
    if (!out) return loom_fail(err, LOOM_EINVAL, "loom_images_load: out is NULL");
    if ((rh == 0) != (rw == 0))
        return loom_fail(err, LOOM_EINVAL, "%s: resize to %zux%zu: both sides or neither", spec ? spec : "?", rw, rh);
    memset(out, 0, sizeof *out);
    if (!spec) return loom_fail(err, LOOM_EINVAL, "loom_images_load: spec is NULL");
    if (!split || (strcmp(split, "train") != 0 && strcmp(split, "test") != 0))
        return loom_fail(err, LOOM_EINVAL, "%s: split \"%s\" is neither \"train\" nor \"test\"",
                         spec, split ? split : "(null)");

    const char *dir = spec;
    struct stat sb;
    if (strcmp(spec, "fashion-mnist-scenes") == 0) { /* generated from Fashion-MNIST (scenes.h) */
        loom_images items;
        loom_status st = loom_images_load(&items, "fashion-mnist", split, err);
        if (st) return st;
        const bool train = strcmp(split, "train") == 0;
        st = loom_scenes_make(out, NULL, NULL, &items, train ? LOOM_SCENES_TRAIN : LOOM_SCENES_TEST,
                              train ? 1 : 2, err);
        loom_images_free(&items);
        return st;
    }
    if (strcmp(spec, "fashion-mnist") == 0) {
        dir = FASHION_MNIST_DIR;
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return loom_fail(err, LOOM_EIO,
                             "fashion-mnist: %s is missing (install the Debian package "
                             "dataset-fashion-mnist)",
                             dir);
    } else if (stat(dir, &sb) != 0) {
        return loom_fail(err, loom_open_status(errno), "%s: %s", dir, strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        return loom_fail(err, LOOM_EINVAL,
                         "%s: not a directory (expected fashion-mnist, a directory of IDX files or "
                         "a directory of PNG images)",
                         dir);
    }

    bool idx = false;
    loom_status st = load_idx_dir(out, dir, split, &idx, err);
    if (idx && st == LOOM_OK && strcmp(spec, "fashion-mnist") == 0) st = fashion_names(out, err);
    if (idx && st == LOOM_OK && (st = resize_all(out, rh, rw, err))) loom_images_free(out);
    if (idx || st != LOOM_OK) return st;

    /* PNG folder: DIR/train and DIR/test hold the splits when DIR/train
     * exists; otherwise the whole folder is the training set. */
    int has_train = is_dir(dir, "train");
    if (has_train < 0) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
    if (has_train) {
        int has_split = is_dir(dir, split);
        if (has_split < 0) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
        if (!has_split)
            return loom_fail(err, LOOM_EINVAL,
                             "%s: no %s set in this folder (it has a train/ sub-directory but no "
                             "%s/)",
                             dir, split, split);
        char *sub = path_join(dir, split);
        if (!sub) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
        st = loom_image_folder_load(out, sub, 0, rh, rw, err);
        free(sub);
        return st;
    }
    if (!has_png_content(dir, 1))
        return loom_fail(err, LOOM_EINVAL,
                         "%s: neither IDX files (train-images-idx3-ubyte[.gz], ...) nor PNG images",
                         dir);
    if (strcmp(split, "test") == 0)
        return loom_fail(err, LOOM_EINVAL,
                         "%s: no test set in this folder (the whole folder is the training set; "
                         "put the splits in train/ and test/ sub-directories to have one)",
                         dir);
    return loom_image_folder_load(out, dir, 0, rh, rw, err);
}

loom_status loom_images_prepare(loom_images *im, const char *what, int gray, char *note,
                                size_t len, loom_error *err) {
    size_t k = 0;
    if (len) note[0] = 0;
#define NOTE(...) do { if (k < len) k += (size_t)snprintf(note + k, len - k, __VA_ARGS__); } while (0)
    if (im->t > 1)
        return loom_fail(err, LOOM_EINVAL,
                         "%s: examples of %zu frames; loom's models take still images (1 frame)",
                         what, im->t);
    if (im->alpha_dropped)
        NOTE("%s: alpha channel of %zu of %zu images dropped (colours kept as stored)", what,
             im->alpha_dropped, im->n);
    if (im->gray_to_rgb && !gray)
        NOTE("%s%s: %zu of %zu images are gray, replicated to R = G = B (the set has colour images)",
             k ? "\n" : "", what, im->gray_to_rgb, im->n);
    if (gray && im->c == 3) {
        loom_status st = loom_images_to_gray(im, err);
        if (st) return st;
        NOTE("%s%s: --gray: %zu RGB images converted to gray, Y = 0.299 R + 0.587 G + 0.114 B "
             "(ITU-R BT.601 luma), rounded",
             k ? "\n" : "", what, im->n);
    }
#undef NOTE
    return LOOM_OK;
}
