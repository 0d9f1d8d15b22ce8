/* PNG output: 8-bit grayscale files (written atomically) and image grids. */
#include "common.h"
#include "atomic.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

loom_status loom_png_write_gray(const char *path, const uint8_t *pixels, size_t h, size_t w,
                                loom_error *err) {
    if (!path || !path[0]) return loom_fail(err, LOOM_EINVAL, "png: empty path");
    if (!pixels) return loom_fail(err, LOOM_EINVAL, "%s: NULL pixels", path);
    /* PNG dimensions are 31-bit; the simplified API's row stride is a png_int_32. */
    if (h == 0 || w == 0 || h > PNG_UINT_31_MAX || w > PNG_UINT_31_MAX)
        return loom_fail(err, LOOM_EINVAL, "%s: image size %zu x %zu is not in 1..2^31-1", path,
                         h, w);

    char *tmp = loom_tmp_path(path);
    if (!tmp) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        /* Nothing was created, so nothing is removed (tmp may be someone's directory). */
        loom_status st = loom_fail(err, LOOM_EIO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_GRAY;
    errno = 0;
    int ok = png_image_write_to_stdio(&img, fp, 0, pixels, (png_int_32)w, NULL);
    int e = errno;
    char reason[sizeof img.message];
    memcpy(reason, img.message, sizeof reason);
    reason[sizeof reason - 1] = '\0';
    png_image_free(&img);

    /* libpng reports write errors in its own words; errno, when set, is more precise. */
    if (ok && (fflush(fp) != 0 || fsync(fileno(fp)) != 0)) {
        ok = 0;
        e = errno;
    }
    if (fclose(fp) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        e = errno;
    }
    loom_status st = LOOM_OK;
    if (!ok) {
        remove(tmp);
        st = loom_fail(err, LOOM_EIO, "%s: %s", path, e ? strerror(e) : reason);
    } else {
        st = loom_fsync_dir(path, err);
    }
    free(tmp);
    return st;
}

/* *out = k*len + (k+1)*pad: k tiles of len pixels with pad before, between and after. */
static bool grid_extent(size_t k, size_t len, size_t pad, size_t *out) {
    size_t tiles, pads;
    if (k == SIZE_MAX || !loom_mul_ok(k, len, &tiles) || !loom_mul_ok(k + 1, pad, &pads) ||
        tiles > SIZE_MAX - pads)
        return false;
    *out = tiles + pads;
    return true;
}

loom_status loom_grid(uint8_t **out, size_t *out_h, size_t *out_w, const uint8_t *imgs, size_t n,
                      size_t h, size_t w, size_t cols, size_t pad, uint8_t pad_value,
                      loom_error *err) {
    if (!out || !out_h || !out_w || !imgs)
        return loom_fail(err, LOOM_EINVAL, "grid: NULL argument");
    if (n == 0 || cols == 0 || h == 0 || w == 0)
        return loom_fail(err, LOOM_EINVAL, "grid: %zu images of %zu x %zu in %zu columns", n, h,
                         w, cols);
    size_t rows = n / cols + (n % cols != 0);
    size_t gh, gw, total;
    if (!grid_extent(rows, h, pad, &gh) || !grid_extent(cols, w, pad, &gw) ||
        !loom_mul_ok(gh, gw, &total))
        return loom_fail(err, LOOM_ENOMEM, "grid: size of %zu images of %zu x %zu overflows", n,
                         h, w);
    uint8_t *g = malloc(total); /* (gh, gw) */
    if (!g) return loom_fail(err, LOOM_ENOMEM, "grid: out of memory for %zu x %zu", gh, gw);
    memset(g, pad_value, total);
    for (size_t i = 0; i < n; i++) {
        size_t y0 = pad + (i / cols) * (h + pad), x0 = pad + (i % cols) * (w + pad);
        for (size_t y = 0; y < h; y++) memcpy(g + (y0 + y) * gw + x0, imgs + (i * h + y) * w, w);
    }
    *out = g;
    *out_h = gh;
    *out_w = gw;
    return LOOM_OK;
}
