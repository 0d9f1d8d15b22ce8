/* PNG writing (read back with libpng's simplified API) and grid layout. */
#include "check.h"
#include "loom.h"

#include <png.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Read an 8-bit grayscale PNG; *out is malloc'ed (h, w). */
static bool read_gray(const char *path, uint8_t **out, size_t *h, size_t *w) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return false;
    bool gray = img.format == PNG_FORMAT_GRAY;
    img.format = PNG_FORMAT_GRAY;
    *h = img.height;
    *w = img.width;
    *out = malloc(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, NULL, *out, 0, NULL)) {
        free(*out);
        *out = NULL;
        return false;
    }
    return gray;
}

static void test_write(void) {
    enum { H = 7, W = 13 };
    uint8_t px[H * W]; /* (H, W) gradient with both ends of the range */
    for (size_t y = 0; y < H; y++)
        for (size_t x = 0; x < W; x++) px[y * W + x] = (uint8_t)((y * W + x) * 255 / (H * W - 1));
    char path[128], tmp[160];
    snprintf(path, sizeof path, "%s/gradient.png", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    loom_error err = {{0}};
    loom_status st = loom_png_write_gray(path, px, H, W, &err);
    CHECK("png write ok", st == LOOM_OK, "%s %s", loom_status_name(st), err.msg);
    CHECK("png write leaves no temp file", !exists(tmp), "%s exists", tmp);
    uint8_t *back = NULL;
    size_t h = 0, w = 0;
    bool ok = read_gray(path, &back, &h, &w);
    CHECK("png reads back as 8-bit gray of the same size", ok && h == H && w == W, "%zu x %zu", h,
          w);
    CHECK("png pixels round trip", back && h == H && w == W && memcmp(back, px, sizeof px) == 0,
          "pixels differ");
    free(back);

    /* Overwrite with another image: the new pixels win. */
    uint8_t one[1] = {42};
    st = loom_png_write_gray(path, one, 1, 1, &err);
    back = NULL;
    ok = st == LOOM_OK && read_gray(path, &back, &h, &w);
    CHECK("png overwrite 1x1", ok && h == 1 && w == 1 && back[0] == 42, "%s", err.msg);
    free(back);

    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.png", dir);
    st = loom_png_write_gray(nodir, px, H, W, &err);
    printf("# %s\n", err.msg);
    CHECK("png into a missing directory: EIO", st == LOOM_EIO && strstr(err.msg, nodir) &&
                                                   strstr(err.msg, "No such file or directory"),
          "%s %s", loom_status_name(st), err.msg);

    /* Temp file cannot be created: the existing image survives. */
    mkdir(tmp, 0700);
    st = loom_png_write_gray(path, px, H, W, &err);
    back = NULL;
    ok = read_gray(path, &back, &h, &w);
    CHECK("png failed overwrite keeps the old image",
          st == LOOM_EIO && strstr(err.msg, path) && ok && h == 1 && w == 1 && back[0] == 42,
          "%s %s", loom_status_name(st), err.msg);
    free(back);
    rmdir(tmp);

    /* rename onto a directory fails: the temp file is removed. */
    char dpath[128], dtmp[160];
    snprintf(dpath, sizeof dpath, "%s/adir.png", dir);
    snprintf(dtmp, sizeof dtmp, "%s.tmp", dpath);
    mkdir(dpath, 0700);
    st = loom_png_write_gray(dpath, px, H, W, &err);
    CHECK("png failed rename removes the temp file", st == LOOM_EIO && !exists(dtmp),
          "%s %s", loom_status_name(st), err.msg);
    rmdir(dpath);

    st = loom_png_write_gray(path, px, 0, W, &err);
    CHECK("png h = 0 rejected", st == LOOM_EINVAL, "%s", loom_status_name(st));
    st = loom_png_write_gray(path, px, H, (size_t)1 << 31, &err);
    CHECK("png w = 2^31 rejected", st == LOOM_EINVAL, "%s", loom_status_name(st));
    st = loom_png_write_gray(path, NULL, H, W, &err);
    CHECK("png NULL pixels rejected", st == LOOM_EINVAL, "%s", loom_status_name(st));
    unlink(path);
}

static void test_grid(void) {
    /* 5 images of 2x2, image i holds 10*i + 1..4 in raster order. */
    uint8_t imgs[5 * 4];
    for (size_t i = 0; i < 5; i++)
        for (size_t k = 0; k < 4; k++) imgs[i * 4 + k] = (uint8_t)(10 * i + k + 1);
    enum { P = 255 };
    static const uint8_t want[7 * 10] = {
        P, P,  P,  P, P,  P,  P, P,  P,  P, /* pad row */
        P, 1,  2,  P, 11, 12, P, 21, 22, P, /* images 0 1 2 */
        P, 3,  4,  P, 13, 14, P, 23, 24, P, /* */
        P, P,  P,  P, P,  P,  P, P,  P,  P, /* pad row */
        P, 31, 32, P, 41, 42, P, P,  P,  P, /* images 3 4, empty cell */
        P, 33, 34, P, 43, 44, P, P,  P,  P, /* */
        P, P,  P,  P, P,  P,  P, P,  P,  P, /* pad row */
    };
    uint8_t *g = NULL;
    size_t gh = 0, gw = 0;
    loom_error err = {{0}};
    loom_status st = loom_grid(&g, &gh, &gw, imgs, 5, 2, 2, 3, 1, P, &err);
    CHECK("grid n=5 cols=3 pad=1: size 7 x 10", st == LOOM_OK && gh == 7 && gw == 10,
          "%s %zu x %zu", err.msg, gh, gw);
    CHECK("grid n=5 cols=3 pad=1: pixels", g && gh == 7 && gw == 10 && memcmp(g, want, 70) == 0,
          "layout differs");

    /* And the grid goes through the PNG writer unchanged. */
    char path[128];
    snprintf(path, sizeof path, "%s/grid.png", dir);
    uint8_t *back = NULL;
    size_t h = 0, w = 0;
    bool ok = g && loom_png_write_gray(path, g, gh, gw, &err) == LOOM_OK &&
              read_gray(path, &back, &h, &w);
    CHECK("grid png round trip", ok && h == 7 && w == 10 && memcmp(back, want, 70) == 0, "%s",
          err.msg);
    free(back);
    free(g);
    unlink(path);

    /* pad = 0, full grid: the tiles touch. */
    g = NULL;
    st = loom_grid(&g, &gh, &gw, imgs, 4, 2, 2, 2, 0, 0, &err);
    static const uint8_t want0[16] = {1, 2, 11, 12, 3, 4, 13, 14, 21, 22, 31, 32, 23, 24, 33, 34};
    CHECK("grid pad=0", st == LOOM_OK && gh == 4 && gw == 4 && memcmp(g, want0, 16) == 0, "%s",
          err.msg);
    free(g);

    /* More columns than images: one row, trailing cells are padding. */
    g = NULL;
    st = loom_grid(&g, &gh, &gw, imgs, 1, 2, 2, 3, 2, 7, &err);
    bool pad_ok = st == LOOM_OK && gh == 6 && gw == 14; /* 3*2 + 4*2 */
    for (size_t y = 0; pad_ok && y < gh; y++)
        for (size_t x = 0; x < gw; x++) {
            bool in = y >= 2 && y < 4 && x >= 2 && x < 4;
            uint8_t v = in ? imgs[(y - 2) * 2 + (x - 2)] : 7;
            pad_ok = pad_ok && g[y * gw + x] == v;
        }
    CHECK("grid cols > n, pad=2", pad_ok, "%s %zu x %zu", err.msg, gh, gw);
    free(g);

    g = NULL;
    st = loom_grid(&g, &gh, &gw, imgs, 5, 2, 2, 0, 1, 0, &err);
    CHECK("grid cols=0 rejected", st == LOOM_EINVAL && g == NULL, "%s", loom_status_name(st));
    st = loom_grid(&g, &gh, &gw, imgs, 0, 2, 2, 3, 1, 0, &err);
    CHECK("grid n=0 rejected", st == LOOM_EINVAL && g == NULL, "%s", loom_status_name(st));
    st = loom_grid(&g, &gh, &gw, NULL, 5, 2, 2, 3, 1, 0, &err);
    CHECK("grid NULL images rejected", st == LOOM_EINVAL && g == NULL, "%s", loom_status_name(st));
    st = loom_grid(&g, &gh, &gw, imgs, SIZE_MAX, 2, 2, 1, 1, 0, &err);
    CHECK("grid n overflow rejected", st == LOOM_ENOMEM && g == NULL, "%s", loom_status_name(st));
    st = loom_grid(&g, &gh, &gw, imgs, 2, SIZE_MAX / 2, 2, 1, 1, 0, &err);
    CHECK("grid h overflow rejected", st == LOOM_ENOMEM && g == NULL, "%s", loom_status_name(st));
    st = loom_grid(&g, &gh, &gw, imgs, 2, 2, 2, 1, SIZE_MAX / 2, 0, &err);
    CHECK("grid pad overflow rejected", st == LOOM_ENOMEM && g == NULL, "%s",
          loom_status_name(st));
}


/* Read an 8-bit PNG as RGB, interleaved (h, w, 3); *is_rgb: the file's own format was RGB. */
static bool read_rgb(const char *path, uint8_t **out, size_t *h, size_t *w, bool *is_rgb) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return false;
    *is_rgb = img.format == PNG_FORMAT_RGB;
    img.format = PNG_FORMAT_RGB;
    *h = img.height;
    *w = img.width;
    *out = malloc(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, NULL, *out, 0, NULL)) {
        free(*out);
        *out = NULL;
        return false;
    }
    return true;
}

static void test_rgb(void) {
    enum { H = 5, W = 7 };
    uint8_t px[3 * H * W]; /* planar (3, H, W), every channel different */
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < H * W; i++) px[k * H * W + i] = (uint8_t)(i * 7 + k * 90 + 1);
    char path[128];
    snprintf(path, sizeof path, "%s/rgb.png", dir);
    loom_error err = {{0}};
    loom_status st = loom_png_write_rgb(path, px, H, W, &err);
    CHECK("png rgb write ok", st == LOOM_OK, "%s %s", loom_status_name(st), err.msg);
    uint8_t *back = NULL;
    size_t h = 0, w = 0;
    bool is_rgb = false, ok = read_rgb(path, &back, &h, &w, &is_rgb);
    bool same = ok && h == H && w == W;
    for (size_t k = 0; same && k < 3; k++)
        for (size_t i = 0; i < H * W; i++) same = same && back[3 * i + k] == px[k * H * W + i];
    CHECK("png rgb is an 8-bit RGB file; planar in, pixels round trip", ok && is_rgb && same,
          "ok %d rgb %d %zu x %zu", ok, is_rgb, h, w);
    free(back);
    unlink(path);
    st = loom_png_write_rgb(path, px, 0, W, &err);
    CHECK("png rgb h = 0 rejected", st == LOOM_EINVAL, "%s", loom_status_name(st));
    st = loom_png_write_rgb(path, px, H, (size_t)1 << 30, &err);
    CHECK("png rgb 3 w past 2^31 rejected", st == LOOM_EINVAL, "%s", loom_status_name(st));
    st = loom_png_write_rgb(path, NULL, H, W, &err);
    CHECK("png rgb NULL pixels rejected", st == LOOM_EINVAL, "%s", loom_status_name(st));
    CHECK("png rgb failures leave no file", !exists(path), "%s exists", path);

    /* grid of 3 images of (3, 2, 2) in 2 columns, pad 1: each channel plane is the
     * gray grid of that channel */
    uint8_t imgs[3 * 3 * 4];
    for (size_t i = 0; i < sizeof imgs; i++) imgs[i] = (uint8_t)(i + 1);
    uint8_t *g = NULL;
    size_t gh = 0, gw = 0;
    st = loom_grid_channels(&g, &gh, &gw, imgs, 3, 3, 2, 2, 2, 1, 200, &err);
    bool grid_ok = st == LOOM_OK && gh == 7 && gw == 7;
    for (size_t k = 0; grid_ok && k < 3; k++) {
        uint8_t one[3 * 4], *ref = NULL;
        size_t rh, rw;
        for (size_t i = 0; i < 3; i++) memcpy(one + 4 * i, imgs + (3 * i + k) * 4, 4);
        grid_ok = loom_grid(&ref, &rh, &rw, one, 3, 2, 2, 2, 1, 200, &err) == LOOM_OK &&
                  rh == gh && rw == gw && memcmp(g + k * gh * gw, ref, gh * gw) == 0;
        free(ref);
    }
    /* and by hand: image 1 (top right), channel 2, pixel (1, 0) = imgs[(3 + 2) * 4 + 2] */
    grid_ok = grid_ok && g[2 * 49 + 2 * 7 + 4] == imgs[22] && g[0] == 200 && g[49 + 6 * 7 + 6] == 200;
    CHECK("grid with 3 channels: (c, gh, gw), each plane tiled like the gray grid", grid_ok,
          "%s %zu x %zu", err.msg, gh, gw);
    if (grid_ok) {
        st = loom_png_write_rgb(path, g, gh, gw, &err);
        back = NULL;
        ok = st == LOOM_OK && read_rgb(path, &back, &h, &w, &is_rgb);
        CHECK("rgb grid png round trip", ok && h == 7 && w == 7 && back[3 * (2 * 7 + 4) + 2] == imgs[22] &&
                                             back[3 * (1 * 7 + 1) + 0] == imgs[0] &&
                                             back[3 * (1 * 7 + 1) + 1] == imgs[4],
              "%s", err.msg);
        free(back);
        unlink(path);
    }
    free(g);
    g = NULL;
    st = loom_grid_channels(&g, &gh, &gw, imgs, 3, 0, 2, 2, 2, 1, 0, &err);
    CHECK("grid c = 0 rejected", st == LOOM_EINVAL && g == NULL, "%s", loom_status_name(st));
    st = loom_grid_channels(&g, &gh, &gw, imgs, 3, SIZE_MAX / 4, 2, 2, 2, 1, 0, &err);
    CHECK("grid c overflow rejected", st == LOOM_ENOMEM && g == NULL && strstr(err.msg, "overflows"),
          "%s %s", loom_status_name(st), err.msg);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/loom_png_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_write();
    test_grid();
    test_rgb();
    CHECK("temp directory empty and removed", rmdir(dir) == 0, "%s left behind", dir);
    CHECK_DONE();
}
