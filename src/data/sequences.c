/* Image sequences (loom_sequences_load, docs/data.md): the Moving
 * Fashion-MNIST generator, the NumPy .npy reader (Moving MNIST's file
 * layout) and folders of PNG sequences. */
#include "common.h"
#include "seqgen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------- generator */

#define CANVAS 64
#define ITEM 28
#define ITEMS 2
#define MOVING_TRAIN 100000
#define MOVING_TEST 10000
#define SEED_TRAIN 0x6d6f76696e672d74ULL /* fixed: the sets are the same everywhere */
#define SEED_TEST 0x6d6f76696e672d65ULL

struct loom_seqgen {
    size_t refs;
    uint8_t *src; /* (nsrc, 28, 28) the items */
    size_t nsrc, frames;
    uint64_t seed;
};

loom_seqgen *loom_seqgen_ref(loom_seqgen *g) {
    if (g) g->refs++;
    return g;
}

void loom_seqgen_unref(loom_seqgen *g) {
    if (!g || --g->refs) return;
    free(g->src);
    free(g);
}

/* 2 items on a 64 x 64 canvas, each from a random start (its 28 x 28 box
 * inside the canvas) in a random direction at a constant speed uniform in
 * [3, 5) pixels per frame, bouncing off the walls; overlaps take the
 * pixel-wise max. Only +, *, / and sqrt (correctly rounded in IEEE
 * arithmetic) decide positions, so every machine draws the same frames. */
void loom_moving_sequence(uint8_t *dst, size_t frames, const uint8_t *src, size_t nsrc,
                          uint64_t seed, size_t id) {
    loom_rng r;
    loom_rng_seed(&r, seed ^ ((uint64_t)id + 1) * 0x9e3779b97f4a7c15ULL);
    memset(dst, 0, frames * CANVAS * CANVAS);
    const float lim = (float)(CANVAS - ITEM);
    for (int it = 0; it < ITEMS; it++) {
        const uint8_t *img = src + loom_rng_below(&r, nsrc) * ITEM * ITEM;
        float x = lim * loom_rng_uniform(&r), y = lim * loom_rng_uniform(&r);
        float u, v, r2;
        do { /* a direction uniform on the circle, by rejection */
            u = 2.0f * loom_rng_uniform(&r) - 1.0f;
            v = 2.0f * loom_rng_uniform(&r) - 1.0f;
            r2 = u * u + v * v;
        } while (r2 > 1.0f || r2 < 0.01f);
        const float speed = 3.0f + 2.0f * loom_rng_uniform(&r), norm = sqrtf(r2);
        float vx = speed * u / norm, vy = speed * v / norm;
        for (size_t t = 0; t < frames; t++) {
            const int ix = (int)(x + 0.5f), iy = (int)(y + 0.5f); /* x, y >= 0 */
            uint8_t *fr = dst + t * CANVAS * CANVAS;
            for (int a = 0; a < ITEM; a++)
                for (int b = 0; b < ITEM; b++) {
                    uint8_t *o = fr + (iy + a) * CANVAS + ix + b;
                    const uint8_t p = img[a * ITEM + b];
                    if (p > *o) *o = p;
                }
            x += vx, y += vy;
            if (x < 0.0f) x = -x, vx = -vx;
            if (x > lim) x = 2.0f * lim - x, vx = -vx;
            if (y < 0.0f) y = -y, vy = -vy;
            if (y > lim) y = 2.0f * lim - y, vy = -vy;
        }
    }
}

void loom_images_example(const loom_images *im, size_t k, uint8_t *dst) {
    if (im->gen) {
        const loom_seqgen *g = im->gen;
        loom_moving_sequence(dst, g->frames, g->src, g->nsrc, g->seed, loom_images_gen_id(im, k));
        return;
    }
    const size_t eb = loom_images_example_bytes(im);
    memcpy(dst, im->pixels + k * eb, eb);
}

static loom_status moving_load(loom_images *out, const char *split, size_t frames, loom_error *err) {
    loom_images items;
    loom_status st = loom_images_load(&items, "fashion-mnist", split, err);
    if (st) return st;
    if (items.h != ITEM || items.w != ITEM || (items.c && items.c != 1) || (items.t && items.t != 1)) {
        loom_images_free(&items);
        return loom_fail(err, LOOM_EINVAL, "moving-fashion-mnist: Fashion-MNIST images are not 28x28 gray");
    }
    loom_seqgen *g = calloc(1, sizeof *g);
    if (!g) {
        loom_images_free(&items);
        return loom_fail(err, LOOM_ENOMEM, "moving-fashion-mnist: out of memory");
    }
    const bool test = strcmp(split, "test") == 0;
    g->refs = 1, g->src = items.pixels, g->nsrc = items.n, g->frames = frames;
    g->seed = test ? SEED_TEST : SEED_TRAIN;
    items.pixels = NULL;
    loom_images_free(&items);
    *out = (loom_images){.n = test ? MOVING_TEST : MOVING_TRAIN, .h = CANVAS, .w = CANVAS, .t = frames,
                         .c = 1, .gen = g};
    return LOOM_OK;
}

/* ------------------------------------------------------------------- npy */

/* the value text after 'key': in a .npy header dict, or NULL */
static const char *npy_key(const char *h, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static loom_status npy_load(loom_images *out, const char *path, size_t frames, loom_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return loom_fail(err, loom_open_status(errno), "%s: %s", path, strerror(errno));
    loom_status st = LOOM_OK;
    unsigned char pre[12];
    char *hdr = NULL;
    uint8_t *pix = NULL;
    struct stat sb;
    size_t hlen = 0, start = 0;
    if (fstat(fileno(fp), &sb) != 0) {
        st = loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = loom_fail(err, LOOM_EINVAL, "%s: not a NumPy .npy file (no \\x93NUMPY magic)", path);
        goto done;
    }
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8, start = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, fp) != 2) {
            st = loom_fail(err, LOOM_EINVAL, "%s: .npy header truncated", path);
            goto done;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24, start = 12;
    } else {
        st = loom_fail(err, LOOM_EINVAL, "%s: .npy format version %d is not 1, 2 or 3", path, pre[6]);
        goto done;
    }
    if (hlen > 1 << 20 || !(hdr = malloc(hlen + 1)) || fread(hdr, 1, hlen, fp) != hlen) {
        st = loom_fail(err, LOOM_EINVAL, "%s: .npy header of %zu bytes is truncated or absurd", path, hlen);
        goto done;
    }
    hdr[hlen] = 0;
    const char *descr = npy_key(hdr, "descr"), *fo = npy_key(hdr, "fortran_order"), *sh = npy_key(hdr, "shape");
    if (!descr || !fo || !sh || *sh != '(') {
        st = loom_fail(err, LOOM_EINVAL, "%s: .npy header lacks descr, fortran_order or shape", path);
        goto done;
    }
    if (strncmp(descr, "'|u1'", 5) != 0 && strncmp(descr, "'u1'", 4) != 0 && strncmp(descr, "'<u1'", 5) != 0) {
        char d[16];
        size_t k = 0;
        while (k + 1 < sizeof d && descr[k] && descr[k] != ',') d[k] = descr[k], k++;
        d[k] = 0;
        st = loom_fail(err, LOOM_EINVAL, "%s: dtype %s, expected uint8 ('|u1')", path, d);
        goto done;
    }
    if (strncmp(fo, "False", 5) != 0) {
        st = loom_fail(err, LOOM_EINVAL, "%s: fortran_order arrays are not supported (save it C-ordered)", path);
        goto done;
    }
    size_t dims[8], rank = 0;
    const char *p = sh + 1;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || errno || rank == 8 || v > (1ULL << 40)) {
            st = loom_fail(err, LOOM_EINVAL, "%s: .npy shape is not a tuple of sizes", path);
            goto done;
        }
        dims[rank++] = (size_t)v;
        p = end;
    }
    if (rank != 4) {
        st = loom_fail(err, LOOM_EINVAL, "%s: array of rank %zu, expected 4 (frames T, sequences N, height, width)",
                       path, rank);
        goto done;
    }
    const size_t T = dims[0], N = dims[1], H = dims[2], W = dims[3];
    size_t total = 0;
    if (!T || !N || !H || !W || !loom_mul_ok(T, N, &total) || !loom_mul_ok(total, H * W, &total)) {
        st = loom_fail(err, LOOM_EINVAL, "%s: shape (%zu, %zu, %zu, %zu) is empty or too large", path, T, N, H, W);
        goto done;
    }
    const size_t have = (size_t)sb.st_size - LOOM_MIN((size_t)sb.st_size, start + hlen);
    if (have != total) {
        st = loom_fail(err, LOOM_EINVAL, "%s: the header's shape (%zu, %zu, %zu, %zu) is %zu bytes of data but the "
                       "file holds %zu (%s)", path, T, N, H, W, total, have, have < total ? "truncated" : "the header lies");
        goto done;
    }
    if (frames && frames != T) {
        st = loom_fail(err, LOOM_EINVAL, "%s: sequences of %zu frames; the model needs %zu", path, T, frames);
        goto done;
    }
    if (!(pix = malloc(total))) {
        st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory for %zu bytes", path, total);
        goto done;
    }
    /* (T, N, H, W) in the file -> (N, T, H, W) */
    for (size_t t = 0; t < T; t++)
        for (size_t n = 0; n < N; n++)
            if (fread(pix + (n * T + t) * H * W, 1, H * W, fp) != H * W) {
                st = loom_fail(err, LOOM_EIO, "%s: read error", path);
                goto done;
            }
    *out = (loom_images){.n = N, .h = H, .w = W, .t = T, .c = 1, .pixels = pix};
    pix = NULL;
done:
    free(hdr);
    free(pix);
    fclose(fp);
    return st;
}

/* ---------------------------------------------------------- PNG folders */

static loom_status pngseq_load(loom_images *out, const char *dir, size_t frames, loom_error *err) {
    loom_images im;
    loom_status st = loom_png_folder_load(&im, dir, err);
    if (st) return st;
    if (!im.labels || im.nclasses < 1) {
        loom_images_free(&im);
        return loom_fail(err, LOOM_EINVAL, "%s: PNG files at the top; a sequence folder holds one sub-directory of "
                         "frames per sequence", dir);
    }
    const size_t N = (size_t)im.nclasses, HW = im.h * im.w;
    size_t *count = calloc(N, sizeof *count);
    if (!count) {
        loom_images_free(&im);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
    }
    for (size_t i = 0; i < im.n; i++) count[im.labels[i]]++;
    const size_t T = count[0];
    for (size_t s = 0; s < N && !st; s++)
        if (count[s] != T)
            st = loom_fail(err, LOOM_EINVAL, "%s: sequence %s has %zu frames but %s has %zu (all must have as many)",
                           dir, im.class_names ? im.class_names[s] : "?", count[s],
                           im.class_names ? im.class_names[0] : "?", T);
    if (!st && frames && T != frames)
        st = loom_fail(err, LOOM_EINVAL, "%s: sequences of %zu frames; the model needs %zu", dir, T, frames);
    uint8_t *pix = st ? NULL : malloc(im.n * HW);
    if (!st && !pix) st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
    if (!st) { /* frames in file order within each sequence */
        memset(count, 0, N * sizeof *count);
        for (size_t i = 0; i < im.n; i++) {
            const size_t s = (size_t)im.labels[i];
            memcpy(pix + (s * T + count[s]++) * HW, im.pixels + i * HW, HW);
        }
        *out = (loom_images){.n = N, .h = im.h, .w = im.w, .t = T, .c = 1, .pixels = pix};
    }
    free(count);
    loom_images_free(&im);
    return st;
}

loom_status loom_sequences_load(loom_images *out, const char *spec, const char *split, size_t frames,
                                loom_error *err) {
    if (!out) return loom_fail(err, LOOM_EINVAL, "loom_sequences_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!spec || !split || (strcmp(split, "train") != 0 && strcmp(split, "test") != 0))
        return loom_fail(err, LOOM_EINVAL, "loom_sequences_load: bad spec or split");
    if (strcmp(spec, "moving-fashion-mnist") == 0) return moving_load(out, split, frames ? frames : 20, err);
    struct stat sb;
    if (stat(spec, &sb) != 0) return loom_fail(err, loom_open_status(errno), "%s: %s", spec, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return pngseq_load(out, spec, frames, err);
    return npy_load(out, spec, frames, err);
}
