/* PNG folder reader.
 *
 * Two layouts (hidden entries, names starting with '.', are skipped; other
 * non-PNG files are ignored):
 *   DIR/NAME.png          unlabelled, one image per file;
 *   DIR/CLASS/NAME.png    one class per sub-directory, numbered in strcmp
 *                         order of the sub-directory names.
 * Files are taken in strcmp order of their names, so loading is deterministic.
 *
 * Channels (docs/data.md): loom_png_folder_load_channels with 0 keeps the
 * files' colour: the set is RGB (c = 3) when any file's colour type is colour
 * (RGB, RGBA or palette), gray images then replicated to R = G = B; else
 * gray (c = 1). Pixels are read as RGBA (palette expanded, 16-bit as below)
 * and the alpha channel is dropped: the stored colour values are kept. With
 * 3 every image is RGB; with 1 (loom_png_folder_load) every image is gray:
 *
 * Gray pixel conversion (libpng's simplified API, read as PNG_FORMAT_GA):
 *   - colour to gray is libpng's rgb_to_gray in linear light: each channel
 *     goes through an 8-bit table lin(v) = round(255 (v/255)^2.2), then
 *     y = (6968 lin(R) + 23434 lin(G) + 2366 lin(B) + 16384) >> 15 (Rec. 709
 *     weights 0.2126, 0.7152, 0.0722 in 1/32768ths, or weights from the
 *     file's cHRM chunk when it has one), then gray = round(255 (y/255)^(1/2.2)).
 *     Pixels with R == G == B pass through unchanged.
 *   - alpha is composited over black in the stored values, done here rather
 *     than by libpng because libpng composites gray+alpha and colour+alpha
 *     files with different gamma handling: gray = (g * a + 127) / 255.
 * In every mode:
 *   - a gAMA chunk is honoured: values are re-encoded to gamma 1/2.2.
 *   - 16-bit files without gAMA are taken as gamma-encoded like 8-bit ones
 *     (PNG_IMAGE_FLAG_16BIT_sRGB), so 16-bit v becomes about v / 257.
 */
#include "common.h"
#include "io/jpeg.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Same ceiling as the IDX reader: the whole set must fit in 2 GiB. */
#define PNG_MAX_BYTES ((size_t)1 << 31)

typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void names_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static bool names_push(name_list *l, char *s) {
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv) return false;
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = s;
    return true;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
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

static bool has_png_ext(const char *name) {
    size_t n = strlen(name);
    return (n > 4 && strcasecmp(name + n - 4, ".png") == 0) || loom_is_jpeg_name(name);
}

/* Fills pngs with the full paths of the PNG files directly in dir and, when
 * subdirs is non-NULL, subdirs with the full paths of its sub-directories;
 * both sorted. */
static loom_status list_dir(const char *dir, name_list *pngs, name_list *subdirs,
                            loom_error *err) {
    DIR *d = opendir(dir);
    if (!d) return loom_fail(err, loom_open_status(errno), "%s: %s", dir, strerror(errno));
    loom_status st = LOOM_OK;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno) st = loom_fail(err, LOOM_EIO, "%s: %s", dir, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.') continue;
        char *full = path_join(dir, e->d_name);
        if (!full) {
            st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory listing the directory", dir);
            break;
        }
        struct stat sb;
        bool png = has_png_ext(e->d_name);
        if (stat(full, &sb) != 0) {
            /* A dangling symlink named *.png is an image we cannot read; any
             * other unreadable entry is not ours to judge. */
            if (png) {
                st = loom_fail(err, LOOM_EIO, "%s: %s", full, strerror(errno));
                free(full);
                break;
            }
            free(full);
            continue;
        }
        name_list *to = NULL;
        if (S_ISDIR(sb.st_mode))
            to = subdirs;
        else if (S_ISREG(sb.st_mode) && png)
            to = pngs;
        if (!to) {
            free(full);
            continue;
        }
        if (!names_push(to, full)) {
            free(full);
            st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory listing the directory", dir);
            break;
        }
    }
    closedir(d);
    if (st != LOOM_OK) {
        names_free(pngs);
        if (subdirs) names_free(subdirs);
        return st;
    }
    if (pngs->n > 1) qsort(pngs->v, pngs->n, sizeof *pngs->v, cmp_name);
    if (subdirs && subdirs->n > 1) qsort(subdirs->v, subdirs->n, sizeof *subdirs->v, cmp_name);
    return LOOM_OK;
}

/* libpng reports a file that ends early as a read error. */
static const char *png_problem(const png_image *im) {
    return strcmp(im->message, "Read Error") == 0 ? "the file ends early" : im->message;
}

/* Opens path and reads its PNG header into *im; on success the caller owns
 * *fp and *im (png_image_free + fclose). */
static loom_status png_open(const char *path, FILE **fp, png_image *im, loom_error *err) {
    *fp = fopen(path, "rb");
    if (!*fp) return loom_fail(err, loom_open_status(errno), "%s: %s", path, strerror(errno));
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, *fp);
    if (got < sizeof sig && ferror(*fp)) {
        int e = errno;
        fclose(*fp);
        *fp = NULL;
        return loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(e));
    }
    if (got < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        fclose(*fp);
        *fp = NULL;
        return loom_fail(err, LOOM_EFORMAT, "%s: not a PNG file", path);
    }
    rewind(*fp);
    memset(im, 0, sizeof *im);
    im->version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_stdio(im, *fp)) {
        loom_status st = loom_fail(err, LOOM_EFORMAT, "%s: bad PNG header (%s)", path, png_problem(im));
        png_image_free(im);
        fclose(*fp);
        *fp = NULL;
        return st;
    }
    return LOOM_OK;
}

/* A PNG's pixels are deflate-compressed rows of at least 1 bit per pixel plus
 * a filter byte, and deflate never shrinks data more than 1032:1. A header
 * that promises more pixels than the file could hold is corrupt: reject it
 * before allocating for them (found by fuzz_png: a 69-byte file declaring
 * 46000x46000 pixels made the reader allocate 6 GB). */
static loom_status plausible_size(const char *path, FILE *fp, const png_image *im,
                                  loom_error *err) {
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) return loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(errno));
    double raw = (double)im->height * (1.0 + ceil((double)im->width / 8.0));
    if ((double)sb.st_size * 1032.0 < raw)
        return loom_fail(err, LOOM_EFORMAT,
                         "%s: header says %lux%lu pixels, more than its %lld bytes can hold", path,
                         (unsigned long)im->width, (unsigned long)im->height,
                         (long long)sb.st_size);
    return LOOM_OK;
}

/* Decodes the image opened by png_open into dst, c planes of npix pixels:
 * c = 1 in gray mode (libpng's rule, alpha composited over black), else
 * (c = 1 or 3) from RGBA with the alpha dropped (c = 1: the R plane, for a
 * gray image R = G = B). scratch holds npix * 4 bytes. Always releases fp and
 * im. */
static loom_status png_finish(const char *path, FILE *fp, png_image *im, bool gray_mode,
                              uint8_t *dst, size_t c, uint8_t *scratch, size_t npix,
                              loom_error *err) {
    im->format = gray_mode ? PNG_FORMAT_GA : PNG_FORMAT_RGBA;
    im->flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
    int ok = png_image_finish_read(im, NULL, scratch, 0, NULL);
    loom_status st = LOOM_OK;
    if (!ok) st = loom_fail(err, LOOM_EFORMAT, "%s: bad PNG data (%s)", path, png_problem(im));
    png_image_free(im);
    fclose(fp);
    if (st != LOOM_OK) return st;
    if (gray_mode) {
        for (size_t i = 0; i < npix; i++)
            dst[i] = (uint8_t)(((unsigned)scratch[2 * i] * scratch[2 * i + 1] + 127) / 255);
        return LOOM_OK;
    }
    for (size_t k = 0; k < c; k++)
        for (size_t i = 0; i < npix; i++) dst[k * npix + i] = scratch[4 * i + k];
    return LOOM_OK;
}

/* Gray images 0..n-1 of *pixels, (n, 1, npix), become (n, 3, npix) with
 * R = G = B, in a buffer grown to hold `total` bytes in all. */
static bool promote_to_rgb(uint8_t **pixels, size_t n, size_t npix, size_t total) {
    uint8_t *p = realloc(*pixels, total);
    if (!p) return false;
    /* from the last image down: image k's planes start at 3k*npix, at or
     * past the end of every gray image below k */
    for (size_t k = n; k-- > 0;) {
        memmove(p + (3 * k + 2) * npix, p + k * npix, npix);
        memmove(p + (3 * k + 1) * npix, p + k * npix, npix);
        memmove(p + 3 * k * npix, p + k * npix, npix);
    }
    *pixels = p;
    return true;
}

/* Decodes files[i] into pixels[i]; all must have the size of files[0].
 * channels: 1 gray, 3 RGB, 0 as the files are (3 once any is colour). */
static loom_status decode_all(loom_images *out, char *const *files, size_t n, size_t channels,
                              loom_error *err) {
    FILE *fp;
    png_image im;
    loom_status st = png_open(files[0], &fp, &im, err);
    if (st != LOOM_OK) return st;
    if ((st = plausible_size(files[0], fp, &im, err)) != LOOM_OK) {
        png_image_free(&im);
        fclose(fp);
        return st;
    }
    const bool gray_mode = channels == 1;
    size_t c = channels ? channels : (im.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    size_t w = im.width, h = im.height, npix, total, scratch_bytes;
    if (!loom_mul_ok(h, w, &npix) || !loom_mul_ok(npix, n, &total) ||
        !loom_mul_ok(total, c, &total) || total > PNG_MAX_BYTES ||
        !loom_mul_ok(npix, 4, &scratch_bytes)) {
        png_image_free(&im);
        fclose(fp);
        return loom_fail(err, LOOM_EFORMAT,
                         "%s: %zu images of %zux%zu%s are larger than the 2 GiB limit", files[0], n,
                         w, h, c == 3 ? " in colour" : "");
    }
    uint8_t *pixels = malloc(total);
    uint8_t *scratch = malloc(scratch_bytes);
    if (!pixels || !scratch) {
        free(pixels);
        free(scratch);
        png_image_free(&im);
        fclose(fp);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory for %zu images of %zux%zu", files[0],
                         n, w, h);
    }
    size_t gray_files = 0, alpha_files = 0;
    for (size_t i = 0; i < n && st == LOOM_OK; i++) {
        if (i > 0) {
            st = png_open(files[i], &fp, &im, err);
            if (st != LOOM_OK) break;
            if (im.width != w || im.height != h) {
                st = loom_fail(err, LOOM_EFORMAT, "%s: %lux%lu but the first image (%s) is %zux%zu",
                               files[i], (unsigned long)im.width, (unsigned long)im.height, files[0],
                               w, h);
                png_image_free(&im);
                fclose(fp);
                break;
            }
        }
        const bool colour = (im.format & PNG_FORMAT_FLAG_COLOR) != 0;
        if (!gray_mode && (im.format & PNG_FORMAT_FLAG_ALPHA)) alpha_files++;
        if (!colour) gray_files++;
        if (!gray_mode && colour && c == 1) {
            /* the first colour image of an as-the-files-are set: it is RGB */
            size_t grown = 0;
            if (!loom_mul_ok(total, 3, &grown) || grown > PNG_MAX_BYTES) {
                st = loom_fail(err, LOOM_EFORMAT,
                               "%s: a colour image, and %zu images of %zux%zu in colour are larger "
                               "than the 2 GiB limit",
                               files[i], n, w, h);
            } else if (!promote_to_rgb(&pixels, i, npix, grown)) {
                st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory for %zu colour images of %zux%zu",
                               files[i], n, w, h);
            }
            if (st != LOOM_OK) {
                png_image_free(&im);
                fclose(fp);
                break;
            }
            c = 3, total = grown;
        }
        st = png_finish(files[i], fp, &im, gray_mode, pixels + i * c * npix, c, scratch, npix, err);
    }
    free(scratch);
    if (st != LOOM_OK) {
        free(pixels);
        return st;
    }
    out->n = n;
    out->h = h;
    out->w = w;
    out->t = 1;
    out->c = c;
    out->pixels = pixels;
    out->gray_to_rgb = c == 3 ? gray_files : 0;
    out->alpha_dropped = alpha_files;
    return LOOM_OK;
}

loom_status loom_png_read(loom_images *out, const char *path, size_t channels, loom_error *err) {
    if (!out || !path) return loom_fail(err, LOOM_EINVAL, "loom_png_read: out or path is NULL");
    memset(out, 0, sizeof *out);
    if (channels != 0 && channels != 1 && channels != 3)
        return loom_fail(err, LOOM_EINVAL, "%s: %zu channels asked for (0, 1 or 3)", path, channels);
    char *files[1] = {(char *)path};
    return decode_all(out, files, 1, channels, err);
}

/* One file decoded at its own size: (c, h, w), malloc'ed. gray_mode: c = 1
 * by each format's rule (libpng's for PNG, libjpeg's Y for JPEG). */
static loom_status decode_one(const char *path, bool gray_mode, uint8_t **px, size_t *c, size_t *h,
                              size_t *w, loom_error *err) {
    *px = NULL;
    if (loom_is_jpeg_name(path)) {
        if (gray_mode) {
            *c = 1;
            return loom_jpeg_read_gray(path, px, h, w, PNG_MAX_BYTES / 3, err);
        }
        return loom_jpeg_read(path, px, c, h, w, PNG_MAX_BYTES / 3, err);
    }
    FILE *fp;
    png_image im;
    loom_status st = png_open(path, &fp, &im, err);
    if (st) return st;
    if ((st = plausible_size(path, fp, &im, err))) {
        png_image_free(&im);
        fclose(fp);
        return st;
    }
    const size_t npix = (size_t)im.width * im.height;
    *w = im.width, *h = im.height;
    *c = gray_mode ? 1 : (im.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    uint8_t *scratch = malloc(npix * 4);
    *px = malloc(*c * npix);
    if (!scratch || !*px) {
        free(scratch), free(*px), *px = NULL;
        png_image_free(&im);
        fclose(fp);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    }
    st = png_finish(path, fp, &im, gray_mode, *px, *c, scratch, npix, err);
    free(scratch);
    if (st) free(*px), *px = NULL;
    return st;
}

/* decode_all for folders with JPEG files or a target size (rh x rw, 0 = the
 * files' own, which must then agree): every file decoded, then resized
 * (loom_image_resize) or checked, then laid out as (n, c, h, w) with c = 3
 * when any file is colour (channels 0), gray ones replicated. */
static loom_status decode_any(loom_images *out, char *const *files, size_t n, size_t channels, size_t rh,
                              size_t rw, loom_error *err) {
    const bool gray_mode = channels == 1;
    uint8_t **px = calloc(n, sizeof *px);
    size_t *cs = calloc(n, sizeof *cs), c = channels ? channels : 1, h = rh, w = rw, gray_files = 0;
    loom_status st = px && cs ? LOOM_OK : loom_fail(err, LOOM_ENOMEM, "%s: out of memory", files[0]);
    for (size_t i = 0; i < n && !st; i++) {
        size_t hi, wi;
        if ((st = decode_one(files[i], gray_mode, &px[i], &cs[i], &hi, &wi, err))) break;
        if (!rh && i == 0) h = hi, w = wi;
        if (!rh && (hi != h || wi != w)) {
            st = loom_fail(err, LOOM_EFORMAT, "%s: %zux%zu but the first image (%s) is %zux%zu (--resize HxW "
                           "makes one size of them)", files[i], wi, hi, files[0], w, h);
            break;
        }
        if (rh && (hi != rh || wi != rw)) { /* the centre crop, resampled */
            uint8_t *r = malloc(cs[i] * rh * rw);
            if (!r) st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", files[i]);
            else if ((st = loom_image_resize(r, rh, rw, px[i], cs[i], hi, wi, err))) free(r);
            else free(px[i]), px[i] = r;
        }
        if (!channels && cs[i] == 3) c = 3;
        gray_files += cs[i] == 1;
    }
    size_t npix = 0, total = 0;
    if (!st && (!loom_mul_ok(h, w, &npix) || !loom_mul_ok(npix * c, n, &total) || total > PNG_MAX_BYTES))
        st = loom_fail(err, LOOM_EFORMAT, "%s: %zu images of %zux%zu are larger than the 2 GiB limit", files[0], n, w, h);
    uint8_t *pixels = st ? NULL : malloc(total ? total : 1);
    if (!st && !pixels) st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory for %zu images", files[0], n);
    for (size_t i = 0; i < n && !st; i++)
        for (size_t k = 0; k < c; k++) /* a gray image in a colour set: R = G = B */
            memcpy(pixels + (i * c + k) * npix, px[i] + (cs[i] == 3 ? k : 0) * npix, npix);
    for (size_t i = 0; px && i < n; i++) free(px[i]);
    free(px), free(cs);
    if (st) {
        free(pixels);
        return st;
    }
    out->n = n, out->h = h, out->w = w, out->t = 1, out->c = c, out->pixels = pixels;
    out->gray_to_rgb = c == 3 ? gray_files : 0;
    return LOOM_OK;
}

loom_status loom_png_folder_load(loom_images *out, const char *dir, loom_error *err) {
    return loom_png_folder_load_channels(out, dir, 1, err);
}

static loom_status folder_load(loom_images *out, const char *dir, size_t channels, size_t rh, size_t rw,
                               loom_error *err);

loom_status loom_png_folder_load_channels(loom_images *out, const char *dir, size_t channels,
                                          loom_error *err) {
    return folder_load(out, dir, channels, 0, 0, err);
}

loom_status loom_image_folder_load(loom_images *out, const char *dir, size_t channels, size_t rh, size_t rw,
                                   loom_error *err) {
    return folder_load(out, dir, channels, rh, rw, err);
}

static loom_status folder_load(loom_images *out, const char *dir, size_t channels, size_t rh, size_t rw,
                               loom_error *err) {
    if (!out) return loom_fail(err, LOOM_EINVAL, "loom_png_folder_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir) return loom_fail(err, LOOM_EINVAL, "loom_png_folder_load: dir is NULL");
    if (channels != 0 && channels != 1 && channels != 3)
        return loom_fail(err, LOOM_EINVAL, "%s: %zu channels asked for (0, 1 or 3)", dir, channels);

    name_list top = {0}, subdirs = {0}, files = {0};
    int32_t *labels = NULL;
    char **class_names = NULL; /* the sub-directory names, in label order */
    size_t nclasses = 0;
    loom_status st = list_dir(dir, &top, &subdirs, err);
    if (st != LOOM_OK) return st;

    if (top.n > 0) {
        /* Flat layout; a sub-directory of PNGs next to the files would make
         * the intended layout ambiguous. */
        for (size_t c = 0; c < subdirs.n && st == LOOM_OK; c++) {
            name_list inner = {0};
            st = list_dir(subdirs.v[c], &inner, NULL, err);
            if (st == LOOM_OK && inner.n > 0)
                st = loom_fail(err, LOOM_EFORMAT,
                               "%s: has both PNG files (%s) and a sub-directory of PNG files (%s); "
                               "use one layout",
                               dir, top.v[0], subdirs.v[c]);
            names_free(&inner);
        }
        files = top;
        top = (name_list){0};
    } else if (subdirs.n > 0) {
        size_t *counts = calloc(subdirs.n, sizeof *counts);
        if (!counts) st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
        for (size_t c = 0; c < subdirs.n && st == LOOM_OK; c++) {
            name_list inner = {0};
            st = list_dir(subdirs.v[c], &inner, NULL, err);
            if (st != LOOM_OK) break;
            if (inner.n == 0) {
                st = loom_fail(err, LOOM_EFORMAT,
                               "%s: no PNG images (each sub-directory of %s is a class)",
                               subdirs.v[c], dir);
                break;
            }
            counts[c] = inner.n;
            for (size_t i = 0; i < inner.n && st == LOOM_OK; i++) {
                if (names_push(&files, inner.v[i]))
                    inner.v[i] = NULL;
                else
                    st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
            }
            names_free(&inner);
        }
        if (st == LOOM_OK && subdirs.n > (size_t)INT32_MAX)
            st = loom_fail(err, LOOM_EFORMAT, "%s: too many class sub-directories", dir);
        if (st == LOOM_OK) {
            labels = malloc(files.n * sizeof *labels);
            if (!labels) st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
        }
        if (st == LOOM_OK) {
            size_t k = 0;
            for (size_t c = 0; c < subdirs.n; c++)
                for (size_t i = 0; i < counts[c]; i++) labels[k++] = (int32_t)c;
            nclasses = subdirs.n;
            class_names = calloc(nclasses, sizeof *class_names);
            for (size_t c = 0; class_names && c < nclasses; c++) {
                const char *slash = strrchr(subdirs.v[c], '/');
                if (!(class_names[c] = strdup(slash ? slash + 1 : subdirs.v[c]))) {
                    for (size_t q = 0; q < c; q++) free(class_names[q]);
                    free(class_names), class_names = NULL;
                }
            }
            if (!class_names) st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
        }
        free(counts);
    }
    names_free(&top);
    names_free(&subdirs);

    if (st == LOOM_OK && files.n == 0) st = loom_fail(err, LOOM_EFORMAT, "%s: no PNG images", dir);
    bool jpeg = false;
    for (size_t i = 0; i < files.n; i++) jpeg |= loom_is_jpeg_name(files.v[i]);
    if (st == LOOM_OK) st = rh || jpeg ? decode_any(out, files.v, files.n, channels, rh, rw, err)
                                       : decode_all(out, files.v, files.n, channels, err);
    names_free(&files);
    if (st != LOOM_OK) {
        free(labels);
        for (size_t c = 0; class_names && c < nclasses; c++) free(class_names[c]);
        free(class_names);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->labels = labels;
    out->nclasses = (int)nclasses;
    out->class_names = class_names;
    return LOOM_OK;
}
