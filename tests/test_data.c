/* Image loaders: IDX (raw and gzip), PNG folders, spec resolution, slicing.
 * Every fixture is written at run time into a mkdtemp directory.
 * LOOM_TEST_QUICK=1 skips the real Fashion-MNIST loads (slow under valgrind). */
#include "check.h"
#include "loom.h"

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[] = "/tmp/loom_test_data_XXXXXX";

static char *tpath(const char *rel) {
    static char buf[8][512];
    static int k = 0;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, rel);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        printf("FAIL setup: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static void write_gz(const char *path, const void *data, size_t len) {
    gzFile g = gzopen(path, "wb");
    if (!g || gzwrite(g, data, (unsigned)len) != (int)len) {
        printf("FAIL setup: cannot write %s\n", path);
        exit(1);
    }
    gzclose(g);
}

static void mkdir_or_die(const char *path) {
    if (mkdir(path, 0700) != 0) {
        printf("FAIL setup: cannot mkdir %s\n", path);
        exit(1);
    }
}

static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* An IDX file in memory: header (magic 00 00 type ndim, dims) then data. */
static size_t idx_bytes(uint8_t *buf, unsigned type, unsigned ndim, const uint32_t *dims,
                        const uint8_t *data, size_t len) {
    size_t k = 0;
    buf[k++] = 0;
    buf[k++] = 0;
    buf[k++] = (uint8_t)type;
    buf[k++] = (uint8_t)ndim;
    for (unsigned i = 0; i < ndim; i++) {
        buf[k++] = (uint8_t)(dims[i] >> 24);
        buf[k++] = (uint8_t)(dims[i] >> 16);
        buf[k++] = (uint8_t)(dims[i] >> 8);
        buf[k++] = (uint8_t)dims[i];
    }
    if (len) memcpy(buf + k, data, len);
    return k + len;
}

/* The small reference set: 5 images of 3 rows x 4 columns. */
enum { SN = 5, SH = 3, SW = 4 };
static uint8_t small_px(size_t i) { return (uint8_t)(i * 7 + 3); }
/* a gap (no 4): nclasses is max + 1 = 6, not the 4 distinct values */
static const uint8_t small_labels[SN] = {0, 3, 1, 3, 5};

static size_t small_images(uint8_t *buf) {
    uint8_t px[SN * SH * SW];
    for (size_t i = 0; i < sizeof px; i++) px[i] = small_px(i);
    const uint32_t dims[3] = {SN, SH, SW};
    return idx_bytes(buf, 8, 3, dims, px, sizeof px);
}

static size_t small_label_file(uint8_t *buf, uint32_t n) {
    const uint32_t dims[1] = {n};
    return idx_bytes(buf, 8, 1, dims, small_labels, n < SN ? n : SN);
}

static bool msg_ok(const loom_error *e, const char *a, const char *b) {
    if (getenv("LOOM_TEST_VERBOSE")) printf("# %s\n", e->msg);
    return strstr(e->msg, a) && (!b || strstr(e->msg, b)) && !strchr(e->msg, '\n');
}

static bool is_empty(const loom_images *im) {
    return im->n == 0 && im->pixels == NULL && im->labels == NULL && im->nclasses == 0;
}

static void test_fashion_mnist(void) {
    if (getenv("LOOM_TEST_QUICK")) {
        printf("# LOOM_TEST_QUICK set: real Fashion-MNIST loads skipped\n");
        return;
    }
    struct {
        const char *split;
        size_t n;
        double mean_lo, mean_hi; /* published means 0.2860 and 0.2868 of 255 */
    } sets[2] = {{"train", 60000, 72.5, 73.4}, {"test", 10000, 72.7, 73.6}};
    for (int s = 0; s < 2; s++) {
        loom_images im;
        loom_error err = {{0}};
        loom_status st = loom_images_load(&im, "fashion-mnist", sets[s].split, &err);
        char name[64];
        snprintf(name, sizeof name, "fashion-mnist %s loads", sets[s].split);
        CHECK(name, st == LOOM_OK, "status %d: %s", st, err.msg);
        if (st != LOOM_OK) continue;
        snprintf(name, sizeof name, "fashion-mnist %s shape", sets[s].split);
        CHECK(name, im.n == sets[s].n && im.h == 28 && im.w == 28, "%zux%zux%zu", im.n, im.h, im.w);
        size_t count[10] = {0};
        bool range = im.labels && im.nclasses == 10;
        for (size_t i = 0; range && i < im.n; i++) {
            if (im.labels[i] < 0 || im.labels[i] > 9)
                range = false;
            else
                count[im.labels[i]]++;
        }
        bool balanced = range;
        for (int c = 0; c < 10; c++) balanced = balanced && count[c] == sets[s].n / 10;
        snprintf(name, sizeof name, "fashion-mnist %s labels", sets[s].split);
        CHECK(name, balanced && im.labels[0] == 9, "nclasses %d, first label %d, count[0] %zu",
              im.nclasses, im.labels ? im.labels[0] : -1, count[0]);
        double sum = 0;
        uint8_t mx = 0;
        for (size_t i = 0; i < im.n * 784; i++) {
            sum += im.pixels[i];
            if (im.pixels[i] > mx) mx = im.pixels[i];
        }
        double mean = sum / (double)(im.n * 784);
        snprintf(name, sizeof name, "fashion-mnist %s pixel statistics", sets[s].split);
        CHECK(name, mean > sets[s].mean_lo && mean < sets[s].mean_hi && mx == 255 &&
                        im.pixels[0] == 0 && im.pixels[783] == 0,
              "mean %.3f max %u corners %u %u", mean, mx, im.pixels[0], im.pixels[783]);
        loom_images_free(&im);
    }
}

static void test_idx_good(void) {
    uint8_t img[16 + SN * SH * SW], lab[8 + SN];
    size_t ni = small_images(img), nl = small_label_file(lab, SN);
    write_bytes(tpath("small-images"), img, ni);
    write_gz(tpath("small-images.gz"), img, ni);
    write_bytes(tpath("small-labels"), lab, nl);
    write_gz(tpath("small-labels.gz"), lab, nl);

    loom_images raw, gz;
    loom_error err = {{0}};
    loom_status s1 = loom_idx_load(&raw, tpath("small-images"), tpath("small-labels"), &err);
    CHECK("idx raw loads", s1 == LOOM_OK, "%s", err.msg);
    loom_status s2 = loom_idx_load(&gz, tpath("small-images.gz"), tpath("small-labels.gz"), &err);
    CHECK("idx gzip loads", s2 == LOOM_OK, "%s", err.msg);
    if (s1 != LOOM_OK || s2 != LOOM_OK) return;

    bool px = raw.n == SN && raw.h == SH && raw.w == SW;
    for (size_t i = 0; px && i < SN * SH * SW; i++) px = raw.pixels[i] == small_px(i);
    CHECK("idx shape (n, rows, cols) and pixels", px, "shape %zux%zux%zu", raw.n, raw.h, raw.w);
    bool lb = raw.labels && raw.nclasses == 6;
    for (size_t i = 0; lb && i < SN; i++) lb = raw.labels[i] == small_labels[i];
    CHECK("idx labels, nclasses = max + 1", lb, "nclasses %d", raw.nclasses);
    CHECK("idx gzip == raw",
          gz.n == raw.n && gz.h == raw.h && gz.w == raw.w && gz.nclasses == raw.nclasses &&
              memcmp(gz.pixels, raw.pixels, SN * SH * SW) == 0 &&
              memcmp(gz.labels, raw.labels, SN * sizeof *raw.labels) == 0,
          "differ");
    loom_images_free(&gz);

    loom_images nol;
    loom_status s3 = loom_idx_load(&nol, tpath("small-images.gz"), NULL, &err);
    CHECK("idx without labels", s3 == LOOM_OK && nol.labels == NULL && nol.nclasses == 0 &&
                                    nol.n == SN && memcmp(nol.pixels, raw.pixels, 60) == 0,
          "status %d %s", s3, err.msg);
    loom_images_free(&nol);

    /* slicing */
    loom_images sl;
    loom_status s4 = loom_images_slice(&sl, &raw, 1, 4, &err);
    bool ok = s4 == LOOM_OK && sl.n == 3 && sl.h == SH && sl.w == SW && sl.nclasses == 6 &&
              sl.pixels != raw.pixels && sl.labels != NULL &&
              memcmp(sl.pixels, raw.pixels + SH * SW, 3 * SH * SW) == 0 &&
              sl.labels[0] == 3 && sl.labels[1] == 1 && sl.labels[2] == 3;
    CHECK("slice [1, 4) copies images and labels", ok, "status %d n %zu", s4, sl.n);
    if (s4 == LOOM_OK) {
        raw.pixels[SH * SW] ^= 0xff;
        CHECK("slice owns its memory", sl.pixels[0] == small_px(SH * SW), "changed with src");
        raw.pixels[SH * SW] ^= 0xff;
    }
    loom_images_free(&sl);
    CHECK("free zeroes the struct", is_empty(&sl) && sl.h == 0 && sl.w == 0, "not zeroed");
    loom_images_free(&sl); /* twice is harmless */

    const size_t bad[][2] = {{3, 2}, {0, 6}, {5, 5}, {2, 2}, {6, 7}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        loom_images b = {.n = 99};
        err.msg[0] = 0;
        loom_status sb = loom_images_slice(&b, &raw, bad[i][0], bad[i][1], &err);
        char name[64];
        snprintf(name, sizeof name, "slice [%zu, %zu) rejected", bad[i][0], bad[i][1]);
        CHECK(name, sb == LOOM_EINVAL && is_empty(&b) && err.msg[0], "status %d", sb);
    }
    loom_images whole;
    CHECK("slice of the whole set",
          loom_images_slice(&whole, &raw, 0, SN, &err) == LOOM_OK && whole.n == SN &&
              memcmp(whole.pixels, raw.pixels, SN * SH * SW) == 0,
          "%s", err.msg);
    loom_images_free(&whole);
    CHECK("slice into itself", loom_images_slice(&raw, &raw, 4, 5, &err) == LOOM_OK &&
                                   raw.n == 1 && raw.pixels[0] == small_px(4 * SH * SW) &&
                                   raw.labels[0] == 5,
          "%s", err.msg);
    loom_images_free(&raw);

    loom_images un;
    if (loom_idx_load(&un, tpath("small-images"), NULL, &err) == LOOM_OK) {
        loom_images us;
        CHECK("slice of unlabelled set has no labels",
              loom_images_slice(&us, &un, 0, 2, &err) == LOOM_OK && us.labels == NULL &&
                  us.nclasses == 0 && us.n == 2,
              "%s", err.msg);
        loom_images_free(&us);
        loom_images_free(&un);
    }
}

/* Expects loader failure with `want`, a message naming `file` and containing `phrase`. */
static void expect_idx_fail(const char *name, const char *images, const char *labels,
                            loom_status want, const char *file, const char *phrase) {
    loom_images im = {.n = 7};
    loom_error err = {{0}};
    loom_status st = loom_idx_load(&im, images, labels, &err);
    CHECK(name, st == want && msg_ok(&err, file, phrase) && is_empty(&im),
          "status %d (want %d), message \"%s\"", st, want, err.msg);
    loom_images_free(&im);
}

static void test_idx_bad(void) {
    uint8_t good[16 + SN * SH * SW], buf[4096];
    size_t ng = small_images(good);
    char name[128];

    /* Each bad image file is tested raw and gzipped; the messages are the same. */
    struct bad_case {
        const char *file, *what, *phrase;
        uint8_t data[256];
        size_t len;
    } cases[16];
    size_t nc = 0;
#define ADD_CASE(f, w, p) (cases[nc].file = (f), cases[nc].what = (w), cases[nc].phrase = (p))
    struct bad_case *c;

    c = &cases[nc];
    ADD_CASE("bad-magic", "wrong magic", "not an IDX file");
    memcpy(c->data, "PK\3\4 this is a zip", 19);
    c->len = 19;
    c = &cases[++nc];
    ADD_CASE("bad-ndim", "label magic as images", "0x00000803");
    memcpy(c->data, good, ng);
    c->data[3] = 1; /* 0x00000801: a label file given as images */
    c->len = ng;
    c = &cases[++nc];
    ADD_CASE("bad-dtype", "wrong dtype", "0x0d (float32)");
    memcpy(c->data, good, ng);
    c->data[2] = 0x0D;
    c->len = ng;
    c = &cases[++nc];
    ADD_CASE("trunc-pixels", "truncated pixels", "expected 60 bytes of pixels, got 50");
    memcpy(c->data, good, ng - 10);
    c->len = ng - 10;
    c = &cases[++nc];
    ADD_CASE("trunc-header", "truncated header", "truncated header");
    memcpy(c->data, good, 10);
    c->len = 10;
    c = &cases[++nc];
    ADD_CASE("trunc-magic", "3-byte file", "expected 16 bytes, got 3");
    memcpy(c->data, good, 3);
    c->len = 3;
    c = &cases[++nc];
    ADD_CASE("trailing", "trailing bytes", "3 bytes after the last image");
    memcpy(c->data, good, ng);
    memcpy(c->data + ng, "xyz", 3);
    c->len = ng + 3;
    c = &cases[++nc];
    ADD_CASE("overflow", "dims overflow", "larger than");
    const uint32_t dov[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    c->len = idx_bytes(c->data, 8, 3, dov, good + 16, 60);
    c = &cases[++nc];
    ADD_CASE("huge", "absurd size", "2 GiB");
    const uint32_t dhuge[3] = {100000, 1000, 1000}; /* 1e11 bytes: fits size_t, not the limit */
    c->len = idx_bytes(c->data, 8, 3, dhuge, good + 16, 60);
    c = &cases[++nc];
    ADD_CASE("zero-rows", "zero rows", "0 rows");
    const uint32_t dz[3] = {5, 0, 4};
    c->len = idx_bytes(c->data, 8, 3, dz, NULL, 0);
    c = &cases[++nc];
    ADD_CASE("zero-n", "zero images", "0 images");
    const uint32_t dz0[3] = {0, 3, 4};
    c->len = idx_bytes(c->data, 8, 3, dz0, NULL, 0);
    nc++;
#undef ADD_CASE

    for (size_t i = 0; i < nc; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "%s-idx3-ubyte", cases[i].file);
        char *raw = tpath(rel);
        write_bytes(raw, cases[i].data, cases[i].len);
        snprintf(name, sizeof name, "idx rejects %s", cases[i].what);
        expect_idx_fail(name, raw, NULL, LOOM_EFORMAT, raw, cases[i].phrase);
        snprintf(rel, sizeof rel, "%s-idx3-ubyte.gz", cases[i].file);
        char *gz = tpath(rel);
        write_gz(gz, cases[i].data, cases[i].len);
        snprintf(name, sizeof name, "idx rejects %s (gzip)", cases[i].what);
        expect_idx_fail(name, gz, NULL, LOOM_EFORMAT, gz, cases[i].phrase);
    }
    {
        loom_images im;
        loom_error err = {{0}};
        loom_idx_load(&im, tpath("trunc-pixels-idx3-ubyte.gz"), NULL, &err);
        CHECK("idx gzip truncation message says gzip-compressed",
              strstr(err.msg, "gzip-compressed") != NULL, "\"%s\"", err.msg);
    }

    /* gzip container problems */
    uint8_t junk[200] = {0x1f, 0x8b, 0x08, 0x00};
    for (size_t i = 4; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37 + 11);
    write_bytes(tpath("junk.gz"), junk, sizeof junk);
    expect_idx_fail("idx rejects garbage gzip", tpath("junk.gz"), NULL, LOOM_EFORMAT,
                    "junk.gz: corrupt gzip data (", NULL);
    write_gz(tpath("whole.gz"), good, ng);
    FILE *f = fopen(tpath("whole.gz"), "rb");
    size_t glen = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    write_bytes(tpath("cut.gz"), buf, glen > 12 ? glen - 12 : 0);
    expect_idx_fail("idx rejects truncated gzip stream", tpath("cut.gz"), NULL, LOOM_EFORMAT,
                    tpath("cut.gz"), "truncated");

    expect_idx_fail("idx missing file is bad input", tpath("nope-idx3-ubyte"), NULL, LOOM_EINVAL,
                    tpath("nope-idx3-ubyte"), "No such file");
    expect_idx_fail("idx directory rejected", tmpdir, NULL, LOOM_EINVAL, tmpdir, "directory");

    /* label files */
    write_bytes(tpath("good-images"), good, ng);
    size_t nl = small_label_file(buf, SN - 1);
    write_bytes(tpath("short-labels"), buf, nl);
    expect_idx_fail("idx rejects label count mismatch", tpath("good-images"),
                    tpath("short-labels"), LOOM_EFORMAT, tpath("short-labels"),
                    "4 labels but");
    write_bytes(tpath("img-as-labels"), good, ng);
    expect_idx_fail("idx rejects an image file as labels", tpath("good-images"),
                    tpath("img-as-labels"), LOOM_EFORMAT, tpath("img-as-labels"), "0x00000801");
    nl = small_label_file(buf, SN);
    write_bytes(tpath("trunc-labels"), buf, nl - 2);
    expect_idx_fail("idx rejects truncated labels", tpath("good-images"), tpath("trunc-labels"),
                    LOOM_EFORMAT, tpath("trunc-labels"), "expected 5 bytes of labels, got 3");
    buf[nl] = 1;
    write_bytes(tpath("long-labels"), buf, nl + 1);
    expect_idx_fail("idx rejects trailing label bytes", tpath("good-images"),
                    tpath("long-labels"), LOOM_EFORMAT, tpath("long-labels"),
                    "1 byte after the last label");
    expect_idx_fail("idx missing label file", tpath("good-images"), tpath("no-labels"), LOOM_EINVAL,
                    tpath("no-labels"), NULL);
}

/* ------------------------------------------------------------------ PNG */

static void write_png(const char *path, png_uint_32 format, size_t h, size_t w,
                      const uint8_t *px) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = format;
    if (!png_image_write_to_file(&im, path, 0, px, 0, NULL)) {
        printf("FAIL setup: cannot write %s: %s\n", path, im.message);
        exit(1);
    }
}

/* Gray test pattern of image `id`, pixel (y, x). */
static uint8_t pat(int id, size_t y, size_t x) { return (uint8_t)(id * 40 + y * 11 + x * 3); }

static void write_gray_pattern(const char *path, int id, size_t h, size_t w) {
    uint8_t px[64 * 64];
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) px[y * w + x] = pat(id, y, x);
    write_png(path, PNG_FORMAT_GRAY, h, w, px);
}

static bool pattern_ok(const uint8_t *px, int id, size_t h, size_t w) {
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++)
            if (px[y * w + x] != pat(id, y, x)) return false;
    return true;
}

/* The documented colour rule, written out independently of libpng. */
static int to_lin(int v) { return (int)floor(255.0 * pow(v / 255.0, 2.2) + 0.5); }
static int from_lin(int v) { return (int)floor(255.0 * pow(v / 255.0, 1 / 2.2) + 0.5); }
static int rule_gray(int r, int g, int b) {
    if (r == g && g == b) return r;
    return from_lin((6968 * to_lin(r) + 23434 * to_lin(g) + 2366 * to_lin(b) + 16384) >> 15);
}

static void expect_png_fail(const char *name, const char *dir, loom_status want, const char *a,
                            const char *b) {
    loom_images im = {.n = 3};
    loom_error err = {{0}};
    loom_status st = loom_png_folder_load(&im, dir, &err);
    CHECK(name, st == want && msg_ok(&err, a, b) && is_empty(&im),
          "status %d (want %d), message \"%s\"", st, want, err.msg);
    loom_images_free(&im);
}

static void test_png(void) {
    loom_error err = {{0}};
    char name[128];

    /* flat folder, mixed-case extension, a non-PNG file that is ignored */
    mkdir_or_die(tpath("flat"));
    write_gray_pattern(tpath("flat/b.png"), 1, 20, 20);
    write_gray_pattern(tpath("flat/a.PNG"), 0, 20, 20);
    write_gray_pattern(tpath("flat/c.png"), 2, 20, 20);
    write_bytes(tpath("flat/notes.txt"), "hello", 5);
    write_bytes(tpath("flat/.hidden.png"), "not png", 7);
    loom_images im;
    loom_status st = loom_png_folder_load(&im, tpath("flat"), &err);
    CHECK("png flat folder loads", st == LOOM_OK, "%s", err.msg);
    if (st == LOOM_OK) {
        CHECK("png flat shape, no labels",
              im.n == 3 && im.h == 20 && im.w == 20 && im.labels == NULL && im.nclasses == 0,
              "%zux%zux%zu labels %p", im.n, im.h, im.w, (void *)im.labels);
        CHECK("png files in name order with exact pixels",
              im.n == 3 && pattern_ok(im.pixels, 0, 20, 20) &&
                  pattern_ok(im.pixels + 400, 1, 20, 20) && pattern_ok(im.pixels + 800, 2, 20, 20),
              "pixels differ");
        loom_images_free(&im);
    }

    /* non-square: 20 rows x 24 columns */
    mkdir_or_die(tpath("wide"));
    write_gray_pattern(tpath("wide/0.png"), 3, 20, 24);
    write_gray_pattern(tpath("wide/1.png"), 4, 20, 24);
    st = loom_png_folder_load(&im, tpath("wide"), &err);
    CHECK("png non-square 20 rows x 24 columns",
          st == LOOM_OK && im.n == 2 && im.h == 20 && im.w == 24 &&
              pattern_ok(im.pixels, 3, 20, 24) && pattern_ok(im.pixels + 480, 4, 20, 24),
          "status %d %s, %zux%zu", st, err.msg, im.h, im.w);
    loom_images_free(&im);

    /* colour conversion rule */
    mkdir_or_die(tpath("rgb"));
    uint8_t rgb[20 * 20 * 3];
    const uint8_t fixed[][4] = {{255, 0, 0, 126}, {0, 255, 0, 219}, {0, 0, 255, 76},
                                {10, 200, 30, 172}, {77, 77, 77, 77}, {255, 255, 255, 255},
                                {0, 0, 0, 0}};
    const size_t nfixed = sizeof fixed / sizeof fixed[0];
    uint32_t s = 12345;
    for (size_t i = 0; i < 400; i++)
        for (int c = 0; c < 3; c++) {
            s = s * 1103515245u + 12345u;
            rgb[3 * i + c] = i < nfixed ? fixed[i][c] : (uint8_t)(s >> 16);
        }
    write_png(tpath("rgb/c.png"), PNG_FORMAT_RGB, 20, 20, rgb);
    st = loom_png_folder_load(&im, tpath("rgb"), &err);
    CHECK("png colour image loads", st == LOOM_OK && im.n == 1, "%s", err.msg);
    if (st == LOOM_OK) {
        bool hard = true;
        for (size_t i = 0; i < nfixed; i++) hard = hard && im.pixels[i] == fixed[i][3];
        CHECK("png colour -> gray, known values (red 126, green 219, blue 76)", hard,
              "red %u green %u blue %u", im.pixels[0], im.pixels[1], im.pixels[2]);
        size_t bad = 0;
        for (size_t i = 0; i < 400; i++)
            bad += im.pixels[i] != rule_gray(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
        CHECK("png colour -> gray follows the documented rule", bad == 0,
              "%zu of 400 pixels differ", bad);
        loom_images_free(&im);
    }

    /* alpha composited over black in stored values: (g * a + 127) / 255 */
    mkdir_or_die(tpath("alpha"));
    const uint8_t rgba[] = {255, 255, 255, 128, 255, 0, 0,  255, 10, 200,
                            30,  0,   100, 100, 100, 128, 3, 3, 3,  128};
    write_png(tpath("alpha/a.png"), PNG_FORMAT_RGBA, 1, 5, rgba);
    const uint8_t ga[] = {255, 128, 100, 128, 200, 0, 90, 255, 3, 128};
    write_png(tpath("alpha/b.png"), PNG_FORMAT_GA, 1, 5, ga);
    /* 3 at alpha 128 is 1.506: rounds to 2 */
    const uint8_t want_alpha[10] = {128, 126, 0, 50, 2, 128, 50, 0, 90, 2};
    st = loom_png_folder_load(&im, tpath("alpha"), &err);
#define PX(i) (im.pixels && im.n * im.w > (i) ? im.pixels[i] : 0)
    CHECK("png alpha composited over black, colour and gray the same",
          st == LOOM_OK && im.n == 2 && im.w == 5 && memcmp(im.pixels, want_alpha, 10) == 0,
          "status %d %s; got %u %u %u %u %u / %u %u %u %u %u", st, err.msg, PX(0), PX(1), PX(2),
          PX(3), PX(4), PX(5), PX(6), PX(7), PX(8), PX(9));
    loom_images_free(&im);
#undef PX

    /* 16-bit gray without gAMA: taken as gamma-encoded, v / 257 */
    mkdir_or_die(tpath("deep"));
    {
        FILE *f = fopen(tpath("deep/a.png"), "wb");
        png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png_create_info_struct(p);
        if (!f || !p || !info || setjmp(png_jmpbuf(p))) {
            printf("FAIL setup: 16-bit PNG\n");
            exit(1);
        }
        png_init_io(p, f);
        png_set_IHDR(p, info, 3, 1, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(p, info);
        png_byte row[6] = {0x80, 0x80, 0xff, 0xff, 0x10, 0x10};
        png_write_row(p, row);
        png_write_end(p, info);
        png_destroy_write_struct(&p, &info);
        fclose(f);
    }
    st = loom_png_folder_load(&im, tpath("deep"), &err);
    CHECK("png 16-bit gray -> v / 257",
          st == LOOM_OK && im.w == 3 && im.pixels[0] == 128 && im.pixels[1] == 255 &&
              im.pixels[2] == 16,
          "status %d %s; %u %u %u", st, err.msg, im.pixels ? im.pixels[0] : 0,
          im.pixels ? im.pixels[1] : 0, im.pixels ? im.pixels[2] : 0);
    loom_images_free(&im);

    /* class sub-directories, numbered by sorted name */
    mkdir_or_die(tpath("classes"));
    mkdir_or_die(tpath("classes/dog"));
    mkdir_or_die(tpath("classes/ant"));
    mkdir_or_die(tpath("classes/cat"));
    write_gray_pattern(tpath("classes/cat/2.png"), 2, 20, 20);
    write_gray_pattern(tpath("classes/cat/1.png"), 1, 20, 20);
    write_gray_pattern(tpath("classes/ant/x.png"), 0, 20, 20);
    write_gray_pattern(tpath("classes/dog/a.png"), 3, 20, 20);
    write_gray_pattern(tpath("classes/dog/b.png"), 4, 20, 20);
    write_bytes(tpath("classes/README"), "x", 1);
    st = loom_png_folder_load(&im, tpath("classes"), &err);
    bool cls = st == LOOM_OK && im.n == 5 && im.nclasses == 3 && im.labels;
    const int32_t want_labels[5] = {0, 1, 1, 2, 2};
    for (int i = 0; cls && i < 5; i++)
        cls = im.labels[i] == want_labels[i] && pattern_ok(im.pixels + 400 * i, i, 20, 20);
    CHECK("png class sub-directories give labels", cls, "status %d %s n %zu nclasses %d", st,
          err.msg, im.n, im.nclasses);
    loom_images_free(&im);

    /* errors */
    mkdir_or_die(tpath("mixed"));
    write_gray_pattern(tpath("mixed/a.png"), 0, 20, 20);
    write_gray_pattern(tpath("mixed/b.png"), 0, 20, 24);
    write_gray_pattern(tpath("mixed/c.png"), 0, 20, 20);
    expect_png_fail("png mixed sizes rejected naming the file", tpath("mixed"), LOOM_EFORMAT,
                    "mixed/b.png: 24x20 but the first image (", "mixed/a.png) is 20x20");

    mkdir_or_die(tpath("text"));
    write_gray_pattern(tpath("text/a.png"), 0, 20, 20);
    write_bytes(tpath("text/x.png"), "just some text\n", 15);
    expect_png_fail("png text file named x.png rejected", tpath("text"), LOOM_EFORMAT,
                    "text/x.png: not a PNG file", NULL);

    mkdir_or_die(tpath("cut"));
    {
        uint8_t noise[64 * 64], whole[8192];
        for (size_t i = 0; i < sizeof noise; i++) noise[i] = (uint8_t)((i * 2654435761u) >> 13);
        write_png(tpath("noise.png"), PNG_FORMAT_GRAY, 64, 64, noise);
        FILE *f = fopen(tpath("noise.png"), "rb");
        size_t n = f ? fread(whole, 1, sizeof whole, f) : 0;
        if (f) fclose(f);
        write_bytes(tpath("cut/a.png"), whole, n / 2);
        write_bytes(tpath("cut/b.png"), whole, 20);
    }
    expect_png_fail("png truncated data rejected", tpath("cut"), LOOM_EFORMAT, "cut/a.png",
                    "bad PNG data (the file ends early)");
    unlink(tpath("cut/a.png"));
    expect_png_fail("png truncated header rejected", tpath("cut"), LOOM_EFORMAT, "cut/b.png",
                    "PNG");

    mkdir_or_die(tpath("empty"));
    expect_png_fail("png empty folder rejected", tpath("empty"), LOOM_EFORMAT, "empty: no PNG images",
                    NULL);
    mkdir_or_die(tpath("emptyclass"));
    mkdir_or_die(tpath("emptyclass/a"));
    mkdir_or_die(tpath("emptyclass/b"));
    write_gray_pattern(tpath("emptyclass/a/1.png"), 0, 20, 20);
    expect_png_fail("png empty class directory rejected", tpath("emptyclass"), LOOM_EFORMAT,
                    "emptyclass/b: no PNG images", NULL);
    mkdir_or_die(tpath("both"));
    mkdir_or_die(tpath("both/sub"));
    write_gray_pattern(tpath("both/a.png"), 0, 20, 20);
    write_gray_pattern(tpath("both/sub/b.png"), 0, 20, 20);
    expect_png_fail("png files and class dirs together rejected", tpath("both"), LOOM_EFORMAT,
                    "both: has both PNG files", NULL);
    expect_png_fail("png nonexistent folder rejected", tpath("missing"), LOOM_EINVAL,
                    "missing: No such file", NULL);
    snprintf(name, sizeof name, "png folder that is a file rejected");
    expect_png_fail(name, tpath("flat/notes.txt"), LOOM_EINVAL, "notes.txt", NULL);
}

/* ------------------------------------------------------------------ specs */

static void expect_load_fail(const char *name, const char *spec, const char *split,
                             loom_status want, const char *a, const char *b);

/* ------------------------------------------------------------------ channels */

/* RGB test pattern of image `id`, channel k, pixel (y, x): every channel differs. */
static uint8_t cpat(int id, int k, size_t y, size_t x) {
    return (uint8_t)(id * 50 + k * 85 + y * 13 + x * 7);
}

/* writes an interleaved (h, w, 3) RGB file of cpat(id) */
static void write_rgb_pattern(const char *path, int id, size_t h, size_t w) {
    uint8_t px[16 * 16 * 3];
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++)
            for (int k = 0; k < 3; k++) px[(y * w + x) * 3 + (size_t)k] = cpat(id, k, y, x);
    write_png(path, PNG_FORMAT_RGB, h, w, px);
}

/* planar (3, h, w) example equals cpat(id) */
static bool cpattern_ok(const uint8_t *px, int id, size_t h, size_t w) {
    for (int k = 0; k < 3; k++)
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++)
                if (px[((size_t)k * h + y) * w + x] != cpat(id, k, y, x)) return false;
    return true;
}

/* A palette PNG (colour type 3) of 1 row: entries pal (npal RGB triples),
 * indices idx (w), optional tRNS alphas (ntrans). */
static void write_palette(const char *path, const uint8_t *pal, int npal, const uint8_t *idx,
                          size_t w, const uint8_t *trans, int ntrans) {
    FILE *f = fopen(path, "wb");
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    if (!f || !p || !info || setjmp(png_jmpbuf(p))) {
        printf("FAIL setup: palette PNG\n");
        exit(1);
    }
    png_init_io(p, f);
    png_set_IHDR(p, info, (png_uint_32)w, 1, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_color c[256];
    for (int i = 0; i < npal; i++) c[i] = (png_color){pal[3 * i], pal[3 * i + 1], pal[3 * i + 2]};
    png_set_PLTE(p, info, c, npal);
    if (ntrans) png_set_tRNS(p, info, trans, ntrans, NULL);
    png_write_info(p, info);
    png_write_row(p, idx);
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    fclose(f);
}

static void test_channels(void) {
    loom_error err = {{0}};
    loom_images im;

    /* bytes per example */
    loom_images e = {.n = 1, .t = 2, .c = 3, .h = 4, .w = 5};
    CHECK("example bytes t*c*h*w", loom_images_example_bytes(&e) == 120, "%zu",
          loom_images_example_bytes(&e));
    e.t = e.c = 0;
    CHECK("example bytes: t, c of 0 read as 1", loom_images_example_bytes(&e) == 20, "%zu",
          loom_images_example_bytes(&e));
    e = (loom_images){.t = 1, .c = 3, .h = SIZE_MAX / 2, .w = 1};
    CHECK("example bytes overflow gives 0", loom_images_example_bytes(&e) == 0, "%zu",
          loom_images_example_bytes(&e));
    CHECK("example bytes NULL gives 0", loom_images_example_bytes(NULL) == 0, "nonzero");

    /* IDX sets say t = c = 1 */
    uint8_t img[16 + SN * SH * SW];
    size_t ni = small_images(img);
    write_bytes(tpath("ch-idx"), img, ni);
    loom_status st = loom_idx_load(&im, tpath("ch-idx"), NULL, &err);
    CHECK("idx sets t = c = 1", st == LOOM_OK && im.t == 1 && im.c == 1 &&
                                     loom_images_example_bytes(&im) == SH * SW,
          "status %d t %zu c %zu", st, im.t, im.c);
    loom_images_free(&im);

    /* an RGB folder keeps its colour, planar */
    mkdir_or_die(tpath("crgb"));
    write_rgb_pattern(tpath("crgb/a.png"), 0, 5, 6);
    write_rgb_pattern(tpath("crgb/b.png"), 1, 5, 6);
    st = loom_images_load(&im, tpath("crgb"), "train", &err);
    CHECK("rgb folder loads as c = 3, t = 1",
          st == LOOM_OK && im.n == 2 && im.c == 3 && im.t == 1 && im.h == 5 && im.w == 6 &&
              im.gray_to_rgb == 0 && im.alpha_dropped == 0,
          "status %d %s c %zu t %zu", st, err.msg, im.c, im.t);
    CHECK("rgb folder pixels planar (n, c, h, w), exact",
          st == LOOM_OK && im.c == 3 && cpattern_ok(im.pixels, 0, 5, 6) &&
              cpattern_ok(im.pixels + 90, 1, 5, 6),
          "pixels differ");
    /* slicing a colour set copies whole examples */
    loom_images sl;
    st = loom_images_slice(&sl, &im, 1, 2, &err);
    CHECK("slice of a colour set keeps c and copies C*H*W per example",
          st == LOOM_OK && sl.n == 1 && sl.c == 3 && sl.t == 1 && cpattern_ok(sl.pixels, 1, 5, 6),
          "status %d %s", st, err.msg);
    loom_images_free(&sl);
    /* --gray: BT.601 */
    st = loom_images_to_gray(&im, &err);
    bool g_ok = st == LOOM_OK && im.c == 1 && im.n == 2;
    for (int id = 0; g_ok && id < 2; id++)
        for (size_t y = 0; y < 5; y++)
            for (size_t x = 0; x < 6; x++) {
                double v = 0.299 * cpat(id, 0, y, x) + 0.587 * cpat(id, 1, y, x) +
                           0.114 * cpat(id, 2, y, x);
                g_ok = g_ok && fabs(im.pixels[(size_t)id * 30 + y * 6 + x] - v) <= 0.5 + 1e-9;
            }
    CHECK("to_gray of a loaded RGB set: c = 1, every pixel within 0.5 of BT.601", g_ok,
          "status %d %s c %zu", st, err.msg, im.c);
    loom_images_free(&im);
    /* the legacy gray reader still converts with libpng's rule */
    st = loom_png_folder_load(&im, tpath("crgb"), &err);
    CHECK("loom_png_folder_load still reads gray (libpng rule)",
          st == LOOM_OK && im.c == 1 && im.n == 2 &&
              im.pixels[0] == rule_gray(cpat(0, 0, 0, 0), cpat(0, 1, 0, 0), cpat(0, 2, 0, 0)),
          "status %d %s c %zu", st, err.msg, im.c);
    loom_images_free(&im);

    /* BT.601 known values and the rounding rule */
    {
        enum { N = 4096 };
        static uint8_t px[3 * N + 3 * 8];
        const uint8_t known[][4] = {{255, 0, 0, 76},  {0, 255, 0, 150},    {0, 0, 255, 29},
                                    {255, 255, 255, 255}, {0, 0, 0, 0}, {10, 200, 30, 124},
                                    {1, 1, 1, 1},     {128, 128, 128, 128}};
        const size_t nk = sizeof known / sizeof known[0], np = N + nk;
        uint32_t r = 777;
        for (size_t i = 0; i < np; i++)
            for (int k = 0; k < 3; k++) {
                r = r * 1103515245u + 12345u;
                px[(size_t)k * np + i] = i < nk ? known[i][k] : (uint8_t)(r >> 16);
            }
        loom_images g = {.n = 1, .t = 1, .c = 3, .h = 1, .w = np};
        g.pixels = malloc(3 * np);
        memcpy(g.pixels, px, 3 * np);
        st = loom_images_to_gray(&g, &err);
        bool kn = st == LOOM_OK && g.c == 1;
        for (size_t i = 0; kn && i < nk; i++) kn = g.pixels[i] == known[i][3];
        CHECK("to_gray known values (red 76, green 150, blue 29, white 255)", kn,
              "status %d; red %u green %u blue %u", st, g.pixels[0], g.pixels[1], g.pixels[2]);
        size_t bad = 0;
        for (size_t i = 0; st == LOOM_OK && i < np; i++) {
            double v = 0.299 * px[i] + 0.587 * px[np + i] + 0.114 * px[2 * np + i];
            double d = g.pixels[i] - v;
            /* the nearest integer; exact halves round up */
            bool near = fabs(d) < 0.5 - 1e-9 || (fabs(d - 0.5) < 1e-9);
            bad += !near;
        }
        CHECK("to_gray rounds 0.299 R + 0.587 G + 0.114 B to nearest (halves up)",
              st == LOOM_OK && bad == 0, "%zu of %zu differ", bad, np);
        loom_images_free(&g);
    }
    /* frames and examples in order: (n, t, c, h, w) with n = 2, t = 2, 1 pixel */
    {
        loom_images g = {.n = 2, .t = 2, .c = 3, .h = 1, .w = 1};
        int32_t lab[2] = {4, 7};
        const uint8_t v[12] = {255, 0, 0, /* ex 0 frame 0: red */ 0, 255, 0, /* green */
                               0, 0, 255, /* ex 1 frame 0: blue */ 255, 255, 255};
        g.pixels = malloc(12);
        g.labels = malloc(sizeof lab);
        memcpy(g.pixels, v, 12);
        memcpy(g.labels, lab, sizeof lab);
        g.nclasses = 8;
        st = loom_images_to_gray(&g, &err);
        CHECK("to_gray converts every (example, frame) in order, labels kept",
              st == LOOM_OK && g.c == 1 && g.t == 2 && g.pixels[0] == 76 && g.pixels[1] == 150 &&
                  g.pixels[2] == 29 && g.pixels[3] == 255 && g.labels[1] == 7 &&
                  loom_images_example_bytes(&g) == 2,
              "status %d %u %u %u %u", st, g.pixels[0], g.pixels[1], g.pixels[2], g.pixels[3]);
        st = loom_images_to_gray(&g, &err);
        CHECK("to_gray of a gray set changes nothing", st == LOOM_OK && g.c == 1 && g.pixels[0] == 76,
              "status %d", st);
        g.c = 2;
        st = loom_images_to_gray(&g, &err);
        CHECK("to_gray of 2 channels rejected", st == LOOM_EINVAL && msg_ok(&err, "2 channels", NULL),
              "status %d %s", st, err.msg);
        loom_images_free(&g);
    }

    /* RGBA: alpha dropped, stored colours kept (also under alpha 0) */
    mkdir_or_die(tpath("crgba"));
    const uint8_t rgba[] = {255, 255, 255, 128, 255, 0, 0, 255, 10, 200, 30, 0};
    write_png(tpath("crgba/a.png"), PNG_FORMAT_RGBA, 1, 3, rgba);
    st = loom_images_load(&im, tpath("crgba"), "train", &err);
    const uint8_t want_rgba[9] = {255, 255, 10, 255, 0, 200, 255, 0, 30}; /* R plane, G, B */
    CHECK("rgba folder: c = 3, alpha dropped, colours as stored",
          st == LOOM_OK && im.c == 3 && im.w == 3 && im.alpha_dropped == 1 &&
              memcmp(im.pixels, want_rgba, 9) == 0,
          "status %d %s c %zu alpha %zu", st, err.msg, im.c, im.alpha_dropped);
    loom_images_free(&im);

    /* palette (with tRNS): expanded to its RGB entries; a gray-only palette is still colour */
    mkdir_or_die(tpath("cpal"));
    const uint8_t pal[] = {200, 10, 20, 0, 100, 250, 9, 9, 9};
    const uint8_t pidx[4] = {1, 0, 2, 1}, ptrans[1] = {0};
    write_palette(tpath("cpal/a.png"), pal, 3, pidx, 4, ptrans, 1);
    const uint8_t graypal[] = {0, 0, 0, 77, 77, 77};
    const uint8_t gidx[4] = {0, 1, 1, 0};
    write_palette(tpath("cpal/b.png"), graypal, 2, gidx, 4, NULL, 0);
    st = loom_images_load(&im, tpath("cpal"), "train", &err);
    const uint8_t want_pal[24] = {0, 200, 9, 0,   100, 10, 9, 100, 250, 20, 9, 250,
                                  0, 77, 77, 0,   0, 77, 77, 0,     0, 77, 77, 0};
    CHECK("palette folder: c = 3, palette expanded, tRNS alpha dropped",
          st == LOOM_OK && im.c == 3 && im.n == 2 && im.alpha_dropped == 1 &&
              im.gray_to_rgb == 0 && memcmp(im.pixels, want_pal, 24) == 0,
          "status %d %s c %zu alpha %zu", st, err.msg, im.c, im.alpha_dropped);
    loom_images_free(&im);

    /* gray and gray + alpha: c = 1, alpha dropped (not composited) */
    mkdir_or_die(tpath("cgray"));
    write_gray_pattern(tpath("cgray/a.png"), 2, 4, 4);
    const uint8_t ga[] = {200, 0, 90, 128, 3, 255, 60, 1};
    write_png(tpath("cgray/b.png"), PNG_FORMAT_GA, 1, 4, ga);
    write_gray_pattern(tpath("cgray/c.png"), 3, 4, 4);
    unlink(tpath("cgray/b.png"));
    st = loom_images_load(&im, tpath("cgray"), "train", &err);
    CHECK("gray folder loads as c = 1", st == LOOM_OK && im.c == 1 && im.n == 2 &&
                                            pattern_ok(im.pixels, 2, 4, 4) &&
                                            pattern_ok(im.pixels + 16, 3, 4, 4),
          "status %d %s c %zu", st, err.msg, im.c);
    loom_images_free(&im);
    mkdir_or_die(tpath("cga"));
    write_png(tpath("cga/b.png"), PNG_FORMAT_GA, 1, 4, ga);
    st = loom_images_load(&im, tpath("cga"), "train", &err);
    CHECK("gray + alpha folder: c = 1, alpha dropped",
          st == LOOM_OK && im.c == 1 && im.alpha_dropped == 1 && im.pixels[0] == 200 &&
              im.pixels[1] == 90 && im.pixels[2] == 3 && im.pixels[3] == 60,
          "status %d %s c %zu", st, err.msg, im.c);
    loom_images_free(&im);

    /* any colour image makes the set RGB: gray first (promoted), colour in the middle, gray last */
    mkdir_or_die(tpath("cmix"));
    write_gray_pattern(tpath("cmix/a.png"), 1, 4, 4);
    write_gray_pattern(tpath("cmix/b.png"), 2, 4, 4);
    write_rgb_pattern(tpath("cmix/c.png"), 3, 4, 4);
    write_gray_pattern(tpath("cmix/d.png"), 4, 4, 4);
    st = loom_images_load(&im, tpath("cmix"), "train", &err);
    bool mix = st == LOOM_OK && im.c == 3 && im.n == 4 && im.gray_to_rgb == 3;
    const int gray_ids[3] = {1, 2, 4}, gray_at[3] = {0, 1, 3};
    for (int i = 0; mix && i < 3; i++)
        for (int k = 0; k < 3; k++)
            mix = mix && pattern_ok(im.pixels + (size_t)gray_at[i] * 48 + (size_t)k * 16,
                                    gray_ids[i], 4, 4);
    mix = mix && cpattern_ok(im.pixels + 2 * 48, 3, 4, 4);
    CHECK("mixed gray and colour folder: c = 3, gray images replicated R = G = B", mix,
          "status %d %s c %zu gray_to_rgb %zu", st, err.msg, im.c, im.gray_to_rgb);
    loom_images_free(&im);
    /* colour first, then gray */
    mkdir_or_die(tpath("cmix2"));
    write_rgb_pattern(tpath("cmix2/a.png"), 0, 4, 4);
    write_gray_pattern(tpath("cmix2/b.png"), 5, 4, 4);
    st = loom_images_load(&im, tpath("cmix2"), "train", &err);
    CHECK("colour then gray: c = 3, the gray one replicated",
          st == LOOM_OK && im.c == 3 && im.gray_to_rgb == 1 && cpattern_ok(im.pixels, 0, 4, 4) &&
              pattern_ok(im.pixels + 48, 5, 4, 4) && pattern_ok(im.pixels + 64, 5, 4, 4) &&
              pattern_ok(im.pixels + 80, 5, 4, 4),
          "status %d %s c %zu", st, err.msg, im.c);
    loom_images_free(&im);
    /* forced channel counts */
    st = loom_png_folder_load_channels(&im, tpath("cgray"), 3, &err);
    CHECK("channels 3 on a gray folder replicates",
          st == LOOM_OK && im.c == 3 && im.gray_to_rgb == 2 && pattern_ok(im.pixels + 32, 2, 4, 4),
          "status %d %s c %zu", st, err.msg, im.c);
    loom_images_free(&im);
    {
        loom_images bad = {.n = 3};
        st = loom_png_folder_load_channels(&bad, tpath("cgray"), 2, &err);
        CHECK("png channels 2 rejected", st == LOOM_EINVAL && is_empty(&bad) &&
                                             msg_ok(&err, "2 channels", NULL),
              "status %d %s", st, err.msg);
    }

    /* 16-bit RGB: v / 257 */
    mkdir_or_die(tpath("c16"));
    {
        FILE *f = fopen(tpath("c16/a.png"), "wb");
        png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png_create_info_struct(p);
        if (!f || !p || !info || setjmp(png_jmpbuf(p))) {
            printf("FAIL setup: 16-bit RGB PNG\n");
            exit(1);
        }
        png_init_io(p, f);
        png_set_IHDR(p, info, 2, 1, 16, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(p, info);
        png_byte row[12] = {0xff, 0xff, 0x80, 0x80, 0x00, 0x00, 0x10, 0x10, 0x00, 0x00, 0xff, 0xff};
        png_write_row(p, row);
        png_write_end(p, info);
        png_destroy_write_struct(&p, &info);
        fclose(f);
    }
    st = loom_images_load(&im, tpath("c16"), "train", &err);
    const uint8_t want16[6] = {255, 16, 128, 0, 0, 255};
    CHECK("16-bit RGB: c = 3, v / 257", st == LOOM_OK && im.c == 3 && im.w == 2 &&
                                            memcmp(im.pixels, want16, 6) == 0,
          "status %d %s", st, err.msg);
    loom_images_free(&im);

    /* bad input through the colour reader: sizes, truncation */
    mkdir_or_die(tpath("csize"));
    mkdir_or_die(tpath("csize/train"));
    mkdir_or_die(tpath("csize/test"));
    write_rgb_pattern(tpath("csize/train/a.png"), 0, 4, 4);
    write_rgb_pattern(tpath("csize/train/b.png"), 1, 4, 5);
    write_rgb_pattern(tpath("csize/test/a.png"), 0, 4, 4);
    expect_load_fail("colour folder with images of different sizes rejected", tpath("csize"),
                     "train", LOOM_EFORMAT, "csize/train/b.png: 5x4 but the first image (",
                     "a.png) is 4x4");
    mkdir_or_die(tpath("ccut"));
    {
        uint8_t noise[16 * 16 * 3], whole[4096];
        for (size_t i = 0; i < sizeof noise; i++) noise[i] = (uint8_t)((i * 2654435761u) >> 13);
        write_png(tpath("cnoise.png"), PNG_FORMAT_RGB, 16, 16, noise);
        FILE *f = fopen(tpath("cnoise.png"), "rb");
        size_t n = f ? fread(whole, 1, sizeof whole, f) : 0;
        if (f) fclose(f);
        write_rgb_pattern(tpath("ccut/a.png"), 0, 16, 16);
        write_bytes(tpath("ccut/b.png"), whole, n / 2);
        write_rgb_pattern(tpath("ccut/c.png"), 1, 16, 16);
    }
    expect_load_fail("colour folder with a truncated PNG rejected", tpath("ccut"), "train",
                     LOOM_EFORMAT, "ccut/b.png", "the file ends early");
}


static void expect_load_fail(const char *name, const char *spec, const char *split,
                             loom_status want, const char *a, const char *b) {
    loom_images im = {.n = 3};
    loom_error err = {{0}};
    loom_status st = loom_images_load(&im, spec, split, &err);
    CHECK(name, st == want && msg_ok(&err, a, b) && is_empty(&im),
          "status %d (want %d), message \"%s\"", st, want, err.msg);
    loom_images_free(&im);
}

static void test_specs(void) {
    loom_error err = {{0}};
    loom_images im;

    /* IDX directory with mixed name variants, gzip and raw */
    uint8_t img[16 + SN * SH * SW], lab[8 + SN];
    size_t ni = small_images(img), nl = small_label_file(lab, SN);
    mkdir_or_die(tpath("idxdir"));
    write_gz(tpath("idxdir/train-images-idx3-ubyte.gz"), img, ni);
    write_bytes(tpath("idxdir/train-labels.idx1-ubyte"), lab, nl);
    img[16] = 200; /* the test set differs in its first pixel */
    write_bytes(tpath("idxdir/t10k-images.idx3-ubyte"), img, ni);
    loom_status st = loom_images_load(&im, tpath("idxdir"), "train", &err);
    CHECK("spec IDX dir train (gzip images, dotted raw labels)",
          st == LOOM_OK && im.n == SN && im.pixels[0] == small_px(0) && im.labels &&
              im.labels[1] == 3 && im.nclasses == 6,
          "status %d %s", st, err.msg);
    loom_images_free(&im);
    st = loom_images_load(&im, tpath("idxdir"), "test", &err);
    CHECK("spec IDX dir test (dotted raw, no labels)",
          st == LOOM_OK && im.n == SN && im.pixels[0] == 200 && im.labels == NULL,
          "status %d %s", st, err.msg);
    loom_images_free(&im);

    mkdir_or_die(tpath("trainonly"));
    write_bytes(tpath("trainonly/train-images-idx3-ubyte"), img, ni);
    expect_load_fail("spec IDX dir without test set", tpath("trainonly"), "test", LOOM_EINVAL,
                     "trainonly: no test set", "t10k-images-idx3-ubyte");
    mkdir_or_die(tpath("badidx"));
    write_bytes(tpath("badidx/train-images-idx3-ubyte"), img, ni - 1);
    expect_load_fail("spec IDX dir passes on file errors", tpath("badidx"), "train",
                     LOOM_EFORMAT, "badidx/train-images-idx3-ubyte: truncated", NULL);

    /* PNG folders */
    st = loom_images_load(&im, tpath("flat"), "train", &err);
    CHECK("spec PNG folder is the training set", st == LOOM_OK && im.n == 3 &&
                                                     pattern_ok(im.pixels, 0, 20, 20),
          "status %d %s", st, err.msg);
    loom_images_free(&im);
    expect_load_fail("spec PNG folder has no test set", tpath("flat"), "test", LOOM_EINVAL,
                     "flat: no test set in this folder", NULL);
    st = loom_images_load(&im, tpath("classes"), "train", &err);
    CHECK("spec PNG class folder", st == LOOM_OK && im.n == 5 && im.nclasses == 3,
          "status %d %s", st, err.msg);
    loom_images_free(&im);

    mkdir_or_die(tpath("split"));
    mkdir_or_die(tpath("split/train"));
    mkdir_or_die(tpath("split/test"));
    write_gray_pattern(tpath("split/train/a.png"), 1, 20, 24);
    write_gray_pattern(tpath("split/train/b.png"), 2, 20, 24);
    write_gray_pattern(tpath("split/test/a.png"), 3, 20, 24);
    st = loom_images_load(&im, tpath("split"), "train", &err);
    CHECK("spec split/train", st == LOOM_OK && im.n == 2 && pattern_ok(im.pixels, 1, 20, 24),
          "status %d %s", st, err.msg);
    loom_images_free(&im);
    st = loom_images_load(&im, tpath("split"), "test", &err);
    CHECK("spec split/test", st == LOOM_OK && im.n == 1 && pattern_ok(im.pixels, 3, 20, 24),
          "status %d %s", st, err.msg);
    loom_images_free(&im);
    mkdir_or_die(tpath("halfsplit"));
    mkdir_or_die(tpath("halfsplit/train"));
    write_gray_pattern(tpath("halfsplit/train/a.png"), 1, 20, 20);
    expect_load_fail("spec train/ without test/", tpath("halfsplit"), "test", LOOM_EINVAL,
                     "halfsplit: no test set", NULL);

    expect_load_fail("spec nonexistent path", tpath("nowhere"), "train", LOOM_EINVAL, "nowhere",
                     "No such file");
    expect_load_fail("spec empty dir is neither", tpath("empty"), "train", LOOM_EINVAL,
                     "empty: neither IDX files", "nor PNG images");
    expect_load_fail("spec regular file", tpath("flat/notes.txt"), "train", LOOM_EINVAL,
                     "notes.txt: not a directory", NULL);
    expect_load_fail("spec bad split", tpath("flat"), "valid", LOOM_EINVAL, "\"valid\"", NULL);
    expect_load_fail("spec NULL split", "fashion-mnist", NULL, LOOM_EINVAL, "fashion-mnist", NULL);
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    test_fashion_mnist();
    test_idx_good();
    test_idx_bad();
    test_png();
    test_specs();
    test_channels();
    remove_tree(tmpdir);
    CHECK_DONE();
}
