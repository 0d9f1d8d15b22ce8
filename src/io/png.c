/* PNG output: 8-bit gray and RGB files (written atomically) and image grids. */
#include "common.h"
#include "atomic.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* pixels (h, w, c) interleaved, c = 1 or 3 */
static loom_status png_write(const char *path, const uint8_t *pixels, size_t h, size_t w,
                             size_t c, loom_error *err) {
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
        loom_status st = loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(errno));
        free(tmp);
        return st;
    }

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    errno = 0;
    int ok = png_image_write_to_stdio(&img, fp, 0, pixels, (png_int_32)(w * c), NULL);
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

loom_status loom_png_write_gray(const char *path, const uint8_t *pixels, size_t h, size_t w,
                                loom_error *err) {
    return png_write(path, pixels, h, w, 1, err);
}

loom_status loom_png_write_rgb(const char *path, const uint8_t *pixels, size_t h, size_t w,
                               loom_error *err) {
    if (!path || !path[0]) return loom_fail(err, LOOM_EINVAL, "png: empty path");
    if (!pixels) return loom_fail(err, LOOM_EINVAL, "%s: NULL pixels", path);
    size_t plane, bytes;
    /* PNG rows are 31-bit lengths in bytes: 3 w must fit too */
    if (h == 0 || w == 0 || h > PNG_UINT_31_MAX || w > PNG_UINT_31_MAX / 3 ||
        !loom_mul_ok(h, w, &plane) || !loom_mul_ok(plane, 3, &bytes))
        return loom_fail(err, LOOM_EINVAL, "%s: image size %zu x %zu is not in 1..2^31-1 (RGB)",
                         path, h, w);
    uint8_t *rgb = malloc(bytes); /* (h, w, 3), as PNG stores it */
    if (!rgb) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory for %zu x %zu", path, h, w);
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < plane; i++) rgb[3 * i + k] = pixels[k * plane + i];
    loom_status st = png_write(path, rgb, h, w, 3, err);
    free(rgb);
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
    return loom_grid_channels(out, out_h, out_w, imgs, n, 1, h, w, cols, pad, pad_value, err);
}

loom_status loom_grid_channels(uint8_t **out, size_t *out_h, size_t *out_w, const uint8_t *imgs,
                               size_t n, size_t c, size_t h, size_t w, size_t cols, size_t pad,
                               uint8_t pad_value, loom_error *err) {
    if (!out || !out_h || !out_w || !imgs)
        return loom_fail(err, LOOM_EINVAL, "grid: NULL argument");
    if (n == 0 || cols == 0 || h == 0 || w == 0 || c == 0)
        return loom_fail(err, LOOM_EINVAL, "grid: %zu images of %zu x %zu x %zu in %zu columns",
                         n, c, h, w, cols);
    size_t rows = n / cols + (n % cols != 0);
    size_t gh, gw, plane, total, hw, ex;
    if (!grid_extent(rows, h, pad, &gh) || !grid_extent(cols, w, pad, &gw) ||
        !loom_mul_ok(gh, gw, &plane) || !loom_mul_ok(plane, c, &total) ||
        !loom_mul_ok(h, w, &hw) || !loom_mul_ok(hw, c, &ex))
        return loom_fail(err, LOOM_ENOMEM, "grid: size of %zu images of %zu x %zu overflows", n,
                         h, w);
    uint8_t *g = malloc(total); /* (c, gh, gw) */
    if (!g) return loom_fail(err, LOOM_ENOMEM, "grid: out of memory for %zu x %zu", gh, gw);
    memset(g, pad_value, total);
    for (size_t i = 0; i < n; i++) {
        size_t y0 = pad + (i / cols) * (h + pad), x0 = pad + (i % cols) * (w + pad);
        for (size_t k = 0; k < c; k++) {
            const uint8_t *src = imgs + i * ex + k * hw; /* image i, channel k: (h, w) */
            for (size_t y = 0; y < h; y++)
                memcpy(g + k * plane + (y0 + y) * gw + x0, src + y * w, w);
        }
    }
    *out = g;
    *out_h = gh;
    *out_w = gw;
    return LOOM_OK;
}
